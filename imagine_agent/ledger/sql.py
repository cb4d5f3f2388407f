"""The shared engine: every ledger operation written once in SQL for both SQLite and PostgreSQL.

An engine (``sqlite.py``, ``postgres.py``) only supplies connections and the lock behind ``_begin``.
"""

from __future__ import annotations

import os
import time
import uuid
from abc import abstractmethod
from collections.abc import Collection
from contextlib import AbstractContextManager
from typing import Any, Literal, Unpack, cast

from ..errors import ApprovalDeniedError, BudgetExceededError, PaymentInFlightError, WalletFrozenError
from ..money import format_usdc
from .base import Ledger
from .budget import DAY, MINUTE, _crossings, _cutoff, _refusal, _remaining, _Usage
from .records import (
    _MAX_INT64,
    _TRANSITIONS,
    ApprovalRecord,
    ApprovalState,
    AuditEvent,
    BudgetTotals,
    Caps,
    PaymentRecord,
    PaymentState,
    TaskFields,
    TaskRecord,
)
from .rows import (
    _APPROVAL_COLUMNS,
    _APPROVALS_SELECT,
    _AUDIT_FIELDS,
    _AUDIT_SELECT,
    _EXPIRED,
    _FINISHED,
    _PAYMENT_COLUMNS,
    _PAYMENTS_SELECT,
    _TASK_FIELDS,
    _TASK_KEPT,
    _TASKS_SELECT,
    _USAGE_SQL,
    _approval,
    _audit_event,
    _payment,
    _payment_row,
    _task,
)
from .schema import _Tx

# ------------------------------------------------------------------------------------ shared engine


class _SqlLedger(Ledger):
    """Everything but connections and locking, written once for both engines."""

    @abstractmethod
    def _begin(self, mode: Literal["read", "write", "schema"]) -> AbstractContextManager[_Tx]:
        """A transaction; ``write`` holds the ledger-wide write lock, ``schema`` the migration lock."""

    # ---- payments

    def reserve(
        self,
        *,
        request_hash: str,
        amount: int,
        asset: str,
        network: str,
        pay_to: str,
        payer: str,
        resource: str,
        caps: Caps,
        session_id: str | None = None,
        now: float | None = None,
        approval_id: str | None = None,
        exclusive: bool = False,
        origin: str = "",
        sandbox: bool = False,
        chain_decides: bool = False,
    ) -> PaymentRecord:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"amount must be an int of atomic USDC units, got {type(amount).__name__}")
        if not 0 < amount <= _MAX_INT64:
            raise ValueError(f"amount must be a positive number of atomic USDC units, got {amount}")
        if caps.session is not None and session_id is None:
            raise ValueError("a session cap is set but no session_id was given: the cap could not apply")
        now = time.time() if now is None else now
        record = PaymentRecord(
            id=uuid.uuid4().hex, request_hash=request_hash, state=PaymentState.RESERVED, amount=amount,
            asset=asset, network=network, pay_to=pay_to, payer=payer, resource=resource,
            session_id=session_id, nonce=None, valid_before=None, header=None, task_id=None,
            transaction=None, reason=None, created_at=now, updated_at=now, origin=origin, sandbox=bool(sandbox),
        )  # fmt: skip
        refusal: WalletFrozenError | BudgetExceededError | ApprovalDeniedError | PaymentInFlightError | None
        cutoff = _cutoff(now, chain_decides)
        with self._begin("write") as tx:
            tx.execute(
                f"UPDATE payments SET state = 'released', updated_at = ?, "
                f"reason = 'rejected, and validBefore has passed: it can no longer settle' WHERE {_EXPIRED}",
                (now, cutoff),
            )
            frozen, frozen_reason = self._frozen(tx)
            if frozen:
                refusal = WalletFrozenError(
                    f"The wallet is frozen{': ' + frozen_reason if frozen_reason else ''}. Nothing was signed. "
                    "Every process sharing this ledger stopped paying; run `imagine-agent budget --unfreeze` "
                    "when it is safe."
                )
            else:
                usage = self._usage(tx, session_id, now, sandbox=bool(sandbox), cutoff=cutoff)
                open_one = self._open_signed(tx, request_hash, cutoff, exclude="") if exclusive else None
                refusal = _in_flight(open_one) if open_one else _refusal(amount, caps, usage, sandbox=bool(sandbox))
            if refusal is None and approval_id is not None:
                refusal = self._use_approval(tx, approval_id, record, now)
            if refusal is None:
                tx.execute(
                    f"INSERT INTO payments ({', '.join(_PAYMENT_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_PAYMENT_COLUMNS))})",
                    _payment_row(record),
                )
                for code, message in _crossings(amount, caps, usage, session_id):
                    self._event(
                        tx,
                        "warning",
                        code,
                        message,
                        amount=amount,
                        network=network,
                        pay_to=pay_to,
                        request_hash=request_hash,
                        payment_id=record.id,
                        session_id=session_id,
                        now=now,
                    )
        if refusal is not None:
            raise refusal  # after the commit, so the auto-releases above are kept
        return record

    def journal_authorization(
        self,
        payment_id: str,
        *,
        nonce: str,
        valid_before: int,
        header: str,
        exclusive: bool = False,
        chain_decides: bool = False,
    ) -> None:
        if not (nonce and header) or isinstance(valid_before, bool) or not isinstance(valid_before, int):
            raise ValueError("journal_authorization needs a nonce, an int valid_before and the header")
        with self._begin("write") as tx:
            current = self._get(tx, payment_id)
            if current.state is not PaymentState.RESERVED:
                raise ValueError(f"payment {payment_id} is {current.state}; only a reservation can be journaled")
            cutoff = _cutoff(time.time(), chain_decides)
            first = self._open_signed(tx, current.request_hash, cutoff, exclude=payment_id) if exclusive else None
            if first is not None:
                raise _in_flight(first)
            if current.header is not None and current.header != header:
                raise ValueError(
                    f"payment {payment_id} already has a different signed header: never sign twice for one "
                    "reservation; re-send the journaled header"
                )
            reused = tx.execute(
                "SELECT id FROM payments WHERE payer = ? AND nonce = ? AND id <> ?",
                (current.payer, nonce, payment_id),
            )
            if reused:
                raise ValueError(f"nonce {nonce} is already journaled for payment {reused[0][0]}")
            self._update(tx, payment_id, nonce=nonce, valid_before=valid_before, header=header)

    def mark_paid(
        self, payment_id: str, *, task_id: str | None, transaction: str | None, reason: str | None = None
    ) -> None:
        with self._begin("write") as tx:
            current = self._transition(tx, payment_id, PaymentState.PAID)
            self._update(
                tx, payment_id, state=PaymentState.PAID.value,
                task_id=current.task_id if task_id is None else task_id,
                settlement_tx=current.transaction if transaction is None else transaction,
                reason=current.reason if reason is None else reason,
            )  # fmt: skip

    def mark_rejected(self, payment_id: str, *, reason: str) -> None:
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.REJECTED)
            self._update(tx, payment_id, state=PaymentState.REJECTED.value, reason=reason)

    def mark_unknown(self, payment_id: str, *, reason: str) -> None:
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.UNKNOWN)
            self._update(tx, payment_id, state=PaymentState.UNKNOWN.value, reason=reason)

    def mark_pending(self, payment_id: str, *, transaction: str, reason: str) -> None:
        if not transaction:
            raise ValueError("a pending settlement needs the transaction hash the server named")
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.PENDING)
            self._update(tx, payment_id, state=PaymentState.PENDING.value, settlement_tx=transaction, reason=reason)

    def mark_cancelled(self, payment_id: str, *, reason: str) -> None:
        if not reason.strip():
            raise ValueError("mark_cancelled needs a reason saying what the chain showed")
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.CANCELLED)
            self._update(tx, payment_id, state=PaymentState.CANCELLED.value, reason=reason)

    def release(self, payment_id: str, *, reason: str) -> None:
        if not reason.strip():
            raise ValueError("release needs a reason saying why the payment provably cannot settle")
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.RELEASED)
            self._update(tx, payment_id, state=PaymentState.RELEASED.value, reason=reason)

    def release_unsigned(self, payment_id: str, *, reason: str) -> bool:
        if not reason.strip():
            raise ValueError("release_unsigned needs a reason")
        with self._begin("write") as tx:
            current = self._get(tx, payment_id)
            if current.state is not PaymentState.RESERVED or current.header is not None:
                return False
            self._update(tx, payment_id, state=PaymentState.RELEASED.value, reason=reason)
        return True

    def get(self, payment_id: str) -> PaymentRecord:
        with self._begin("read") as tx:
            return self._get(tx, payment_id)

    def find_open(
        self, request_hash: str, *, now: float | None = None, chain_decides: bool = False
    ) -> PaymentRecord | None:
        columns = ", ".join(f"p.{c}" for c in _PAYMENT_COLUMNS)
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            rows = tx.execute(
                f"SELECT {columns} FROM payments p LEFT JOIN tasks t ON t.task_id = p.task_id "
                "WHERE p.request_hash = ? AND (p.state IN ('reserved', 'unknown', 'pending') OR (p.state = 'paid' "
                f"AND (t.status IS NULL OR t.status NOT IN ({_FINISHED}))) "
                "OR (p.state = 'rejected' AND p.valid_before >= ?)) "
                "ORDER BY p.created_at DESC LIMIT 1",
                (request_hash, int(_cutoff(now, chain_decides))),
            )
        return _payment(rows[0]) if rows else None

    def in_flight(self) -> list[PaymentRecord]:
        with self._begin("read") as tx:
            rows = tx.execute(f"{_PAYMENTS_SELECT} WHERE state = 'reserved' ORDER BY created_at")
        return [_payment(row) for row in rows]

    def payments(
        self,
        *,
        limit: int | None = None,
        states: Collection[PaymentState] | None = None,
        sandbox: bool | None = None,
    ) -> list[PaymentRecord]:
        conditions, params = list[str](), list[object]()
        if states is not None:
            if not states:
                return []
            conditions.append(f"state IN ({', '.join('?' * len(states))})")
            params = [PaymentState(state).value for state in states]
        if sandbox is not None:
            conditions.append("sandbox = ?")
            params.append(int(sandbox))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._begin("read") as tx:
            rows = tx.execute(f"{_PAYMENTS_SELECT}{where} ORDER BY created_at DESC, id DESC{_limit(limit)}", params)
        return [_payment(row) for row in rows]

    # ---- tasks

    def upsert_task(self, task_id: str, **fields: Unpack[TaskFields]) -> TaskRecord:
        given = cast(dict[str, object], fields)
        unknown = sorted(set(given) - set(_TASK_FIELDS))
        if unknown:
            raise TypeError(f"upsert_task got unknown fields {unknown}; known: {list(_TASK_FIELDS)}")
        if not task_id:
            raise ValueError("upsert_task needs a task id")
        if "status" in given and not given["status"]:
            raise ValueError("a task status cannot be empty")
        if isinstance(given.get("video_path"), str) and given["video_path"]:
            # Absolute on write: the console and other processes run from other directories (rule 8).
            given = {**given, "video_path": os.path.abspath(str(given["video_path"]))}
        columns = [c for c in _TASK_FIELDS if c in given]
        now = time.time()
        updates = "".join(
            f"{c} = COALESCE(tasks.{c}, excluded.{c}), " if c in _TASK_KEPT else f"{c} = excluded.{c}, "
            for c in columns
        )
        with self._begin("write") as tx:
            tx.execute(
                f"INSERT INTO tasks (task_id, {''.join(c + ', ' for c in columns)}created_at, updated_at) "
                f"VALUES (?, {'?, ' * len(columns)}?, ?) "
                f"ON CONFLICT (task_id) DO UPDATE SET {updates}updated_at = excluded.updated_at",
                (task_id, *(given[c] for c in columns), now, now),
            )
            rows = tx.execute(f"{_TASKS_SELECT} WHERE task_id = ?", (task_id,))
        return _task(rows[0])

    def get_task(self, task_id: str) -> TaskRecord | None:
        with self._begin("read") as tx:
            rows = tx.execute(f"{_TASKS_SELECT} WHERE task_id = ?", (task_id,))
        return _task(rows[0]) if rows else None

    def tasks(self, *, pending_only: bool = False, limit: int | None = None) -> list[TaskRecord]:
        where = f" WHERE status NOT IN ({_FINISHED})" if pending_only else ""
        with self._begin("read") as tx:
            rows = tx.execute(f"{_TASKS_SELECT}{where} ORDER BY created_at DESC, task_id DESC{_limit(limit)}")
        return [_task(row) for row in rows]

    def completion_brackets(
        self, origin: str, model: str, duration: float, *, limit: int = 12
    ) -> list[tuple[float, float]]:
        with self._begin("read") as tx:
            rows = tx.execute(
                "SELECT last_pending_at, completed_at, created_at FROM tasks WHERE status = 'completed' "
                "AND completed_at IS NOT NULL AND origin = ? AND model = ? AND duration = ? "
                f"ORDER BY completed_at DESC{_limit(limit)}",
                (origin, model, duration),
            )
        return [(max(0.0, (pending or created) - created), done - created) for pending, done, created in rows]

    # ---- budget

    def totals(
        self,
        caps: Caps,
        *,
        session_id: str | None = None,
        now: float | None = None,
        sandbox: bool = False,
        chain_decides: bool = False,
    ) -> BudgetTotals:
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            usage = self._usage(tx, session_id, now, sandbox=bool(sandbox), cutoff=_cutoff(now, chain_decides))
            frozen, _ = self._frozen(tx)
        has_session = session_id is not None
        return BudgetTotals(
            spent=usage.spent,
            reserved=usage.reserved,
            unknown=usage.unknown,
            daily_used=usage.daily,
            total_used=usage.total,
            session_used=usage.session if has_session else None,
            remaining_daily=_remaining(caps.daily, usage.daily),
            remaining_total=_remaining(caps.total, usage.total),
            remaining_session=_remaining(caps.session, usage.session) if has_session else None,
            payments_last_minute=usage.last_minute,
            frozen=frozen,
        )

    def set_frozen(self, frozen: bool, *, reason: str = "", source: str = "operator") -> None:
        with self._begin("write") as tx:
            tx.execute(
                "UPDATE settings SET frozen = ?, frozen_reason = ?, updated_at = ? WHERE id = 1",
                (int(frozen), reason if frozen else "", time.time()),
            )
            verb = "on" if frozen else "off"
            self._event(
                tx,
                "approval",
                "frozen" if frozen else "unfrozen",
                f"the kill switch was turned {verb} by {source}" + (f": {reason}" if reason else ""),
                source=source[:100],
            )

    def is_frozen(self) -> bool:
        with self._begin("read") as tx:
            return self._frozen(tx)[0]

    # ---- the approvals queue and the audit

    def request_approval(
        self,
        *,
        request_hash: str,
        amount: int,
        asset: str,
        network: str,
        pay_to: str,
        resource: str,
        description: str,
        requester: str,
        ttl: float,
        request_json: str | None = None,
        session_id: str | None = None,
        now: float | None = None,
    ) -> ApprovalRecord:
        _check_approval(amount, ttl)
        now = time.time() if now is None else now
        with self._begin("write") as tx:
            self._expire_approvals(tx, now)
            rows = tx.execute(
                f"{_APPROVALS_SELECT} WHERE request_hash = ? AND state IN ('awaiting_approval', 'approved', 'denied') "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (request_hash,),
            )
            if rows:
                found = _approval(rows[0])
                same_payee = _same_payee(found, pay_to, network)
                if found.state is ApprovalState.DENIED or (found.amount >= amount and same_payee):
                    return found
                # The price went up, or the payee or network changed: the old answer does not cover it, so the
                # operator is asked again (issue 22 d).
                why = (
                    f"superseded: the price rose to {amount}"
                    if same_payee
                    else f"superseded: the server now asks for {pay_to} on {network}"
                )
                tx.execute("UPDATE approvals SET state = 'expired', reason = ? WHERE id = ?", (why[:500], found.id))
            record = ApprovalRecord(
                id=uuid.uuid4().hex[:12], request_hash=request_hash, state=ApprovalState.AWAITING, amount=amount,
                asset=asset, network=network, pay_to=pay_to, resource=resource, description=description[:500],
                request_json=request_json, requester=requester[:100], session_id=session_id, payment_id=None,
                decided_by=None, reason=None, created_at=now, expires_at=now + ttl, decided_at=None, surface="queue",
            )  # fmt: skip
            _insert_approval(tx, record)
            self._event(
                tx,
                "approval",
                "awaiting_approval",
                f"{format_usdc(amount)} for {description or resource} queued for approval by {requester}",
                amount=amount,
                network=network,
                pay_to=pay_to,
                request_hash=request_hash,
                approval_id=record.id,
                session_id=session_id,
                source=requester,
                now=now,
            )
        return record

    def decide_approval(
        self,
        approval_id: str,
        *,
        approve: bool,
        decided_by: str,
        ttl: float,
        reason: str = "",
        now: float | None = None,
    ) -> ApprovalRecord:
        if not ttl > 0:
            raise ValueError(f"an approval's time to live must be positive, got {ttl!r}")
        now = time.time() if now is None else now
        with self._begin("write") as tx:
            self._expire_approvals(tx, now)
            current = self._get_approval(tx, approval_id)
            if current.state is not ApprovalState.AWAITING:
                raise ValueError(
                    f"approval {approval_id} is {current.state.value}; only an approval still awaiting can be decided"
                )
            state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
            expires = now + ttl if approve else current.expires_at
            tx.execute(
                "UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, reason = ?, expires_at = ?, "
                "surface = ? WHERE id = ?",
                (state.value, decided_by[:100], now, reason[:500] or None, expires, decided_by[:100], approval_id),
            )
            verb = "approved" if approve else "denied"
            self._event(
                tx,
                "approval",
                "approved" if approve else "approval_denied",
                f"{format_usdc(current.amount)} for {current.description or current.resource} {verb} by "
                f"{decided_by}" + (f": {reason}" if reason else ""),
                amount=current.amount,
                network=current.network,
                pay_to=current.pay_to,
                request_hash=current.request_hash,
                approval_id=approval_id,
                source=decided_by,
                now=now,
            )
            return self._get_approval(tx, approval_id)

    def record_approval(
        self,
        *,
        request_hash: str,
        amount: int,
        asset: str,
        network: str,
        pay_to: str,
        resource: str,
        description: str,
        decided_by: str,
        surface: str,
        ttl: float,
        request_json: str | None = None,
        session_id: str | None = None,
        now: float | None = None,
    ) -> ApprovalRecord:
        _check_approval(amount, ttl)
        now = time.time() if now is None else now
        record = ApprovalRecord(
            id=uuid.uuid4().hex[:12], request_hash=request_hash, state=ApprovalState.APPROVED, amount=amount,
            asset=asset, network=network, pay_to=pay_to, resource=resource, description=description[:500],
            request_json=request_json, requester=surface[:100], session_id=session_id, payment_id=None,
            decided_by=decided_by[:100], reason=None, created_at=now, expires_at=now + ttl, decided_at=now,
            surface=surface[:100],
        )  # fmt: skip
        with self._begin("write") as tx:
            _insert_approval(tx, record)
            self._event(
                tx,
                "approval",
                "approved",
                f"{format_usdc(amount)} for {description or resource} approved by {decided_by} ({surface})",
                amount=amount,
                network=network,
                pay_to=pay_to,
                request_hash=request_hash,
                approval_id=record.id,
                session_id=session_id,
                source=decided_by[:100],
                now=now,
            )
        return record

    def expire_approval(self, approval_id: str, *, reason: str) -> None:
        with self._begin("write") as tx:
            tx.execute(
                "UPDATE approvals SET state = 'expired', reason = ? WHERE id = ? AND state = 'approved'",
                (reason[:500], approval_id),
            )

    def get_approval(self, approval_id: str) -> ApprovalRecord:
        with self._begin("read") as tx:
            return self._get_approval(tx, approval_id)

    def find_approval(self, request_hash: str, *, now: float | None = None) -> ApprovalRecord | None:
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            rows = tx.execute(
                f"{_APPROVALS_SELECT} WHERE request_hash = ? AND (state = 'denied' OR "
                "(state IN ('awaiting_approval', 'approved') AND expires_at >= ?)) "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (request_hash, now),
            )
        return _approval(rows[0]) if rows else None

    def would_refuse(
        self,
        amount: int,
        caps: Caps,
        *,
        session_id: str | None = None,
        now: float | None = None,
        sandbox: bool = False,
        chain_decides: bool = False,
    ) -> WalletFrozenError | BudgetExceededError | None:
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            frozen, _ = self._frozen(tx)
            usage = self._usage(tx, session_id, now, sandbox=bool(sandbox), cutoff=_cutoff(now, chain_decides))
        if frozen:
            return WalletFrozenError("The wallet is frozen. Nothing was signed.")
        return _refusal(amount, caps, usage, sandbox=bool(sandbox))

    def approvals(
        self, *, states: Collection[ApprovalState] | None = None, limit: int | None = None, now: float | None = None
    ) -> list[ApprovalRecord]:
        now = time.time() if now is None else now
        where, params = "", list[object]()
        if states is not None:
            if not states:
                return []
            where = f" WHERE state IN ({', '.join('?' * len(states))})"
            params = [ApprovalState(state).value for state in states]
        with self._begin("write") as tx:  # expiring stale entries is a write
            self._expire_approvals(tx, now)
            rows = tx.execute(f"{_APPROVALS_SELECT}{where} ORDER BY created_at DESC, id DESC{_limit(limit)}", params)
        return [_approval(row) for row in rows]

    def record_event(self, kind: str, code: str, message: str, **fields: Any) -> AuditEvent:
        unknown = sorted(set(fields) - {*_AUDIT_FIELDS, "now"})
        if unknown:
            raise TypeError(f"record_event got unknown fields {unknown}")
        with self._begin("write") as tx:
            event_id = self._event(tx, kind, code, message, **fields)
            rows = tx.execute(f"{_AUDIT_SELECT} WHERE id = ?", (event_id,))
        return _audit_event(rows[0])

    def events(
        self,
        *,
        kinds: Collection[str] | None = None,
        payment_id: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        clauses, params = [], list[object]()
        if kinds is not None:
            if not kinds:
                return []
            clauses.append(f"kind IN ({', '.join('?' * len(kinds))})")
            params += list(kinds)
        if payment_id is not None:
            clauses.append("payment_id = ?")
            params.append(payment_id)
        if after_id is not None:
            clauses.append("id > ?")
            params.append(int(after_id))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if after_id is not None else "DESC"
        with self._begin("read") as tx:
            rows = tx.execute(f"{_AUDIT_SELECT}{where} ORDER BY id {order}{_limit(limit)}", params)
        return [_audit_event(row) for row in rows]

    def _get_approval(self, tx: _Tx, approval_id: str) -> ApprovalRecord:
        rows = tx.execute(f"{_APPROVALS_SELECT} WHERE id = ?", (approval_id,))
        if not rows:
            raise KeyError(f"no approval {approval_id!r} in this ledger")
        return _approval(rows[0])

    def _expire_approvals(self, tx: _Tx, now: float) -> None:
        tx.execute(
            "UPDATE approvals SET state = 'expired', reason = COALESCE(reason, 'expired undecided') "
            "WHERE state = 'awaiting_approval' AND expires_at < ?",
            (now,),
        )
        tx.execute(
            "UPDATE approvals SET state = 'expired', reason = 'approved, but not used in time' "
            "WHERE state = 'approved' AND expires_at < ?",
            (now,),
        )

    def _use_approval(self, tx: _Tx, approval_id: str, record: PaymentRecord, now: float) -> ApprovalDeniedError | None:
        """Consume an approval for this reservation, in its transaction; the refusal if it does not cover it."""
        self._expire_approvals(tx, now)
        try:
            approval = self._get_approval(tx, approval_id)
        except KeyError:
            return ApprovalDeniedError(
                f"approval {approval_id} does not exist. Nothing was signed.", code="approval_expired"
            )
        if approval.state is ApprovalState.DENIED:
            return ApprovalDeniedError(f"approval {approval_id} was denied. Nothing was signed.")
        if approval.state is not ApprovalState.APPROVED:
            return ApprovalDeniedError(
                f"approval {approval_id} is {approval.state.value}, not approved. Nothing was signed. Ask again.",
                code="approval_expired",
            )
        if approval.request_hash != record.request_hash or record.amount > approval.amount:
            return ApprovalDeniedError(
                f"approval {approval_id} covers another request or a lower price "
                f"({format_usdc(approval.amount)}). Nothing was signed."
            )
        if not _same_payee(approval, record.pay_to, record.network):
            return ApprovalDeniedError(
                f"approval {approval_id} was for {approval.pay_to} on {approval.network}, and the server now asks "
                f"for {record.pay_to} on {record.network}: a new approval is needed. Nothing was signed."
            )
        tx.execute("UPDATE approvals SET state = 'used', payment_id = ? WHERE id = ?", (record.id, approval_id))
        return None

    def _event(self, tx: _Tx, kind: str, code: str, message: str, *, now: float | None = None, **fields: Any) -> int:
        values = [fields.get(name) for name in _AUDIT_FIELDS]
        rows = tx.execute(
            f"INSERT INTO audit (kind, code, message, {', '.join(_AUDIT_FIELDS)}, created_at) "
            f"VALUES (?, ?, ?, {'?, ' * len(_AUDIT_FIELDS)}?) RETURNING id",
            (kind, code, message[:1000], *values, time.time() if now is None else now),
        )
        return int(rows[0][0])

    # ---- helpers (called inside a transaction)

    def _open_signed(self, tx: _Tx, request_hash: str, cutoff: float, *, exclude: str) -> PaymentRecord | None:
        """A signed payment for this request that a caller must attach to instead of paying again (rule 3).

        What ``find_open`` attaches to, decided under the write lock: reserved, unknown or pending; rejected
        until ``valid_before``; paid while its task is not known to be finished (a second identical request
        right after the first was paid attaches to that job rather than buying it again).
        """
        columns = ", ".join(f"p.{c}" for c in _PAYMENT_COLUMNS)
        rows = tx.execute(
            f"SELECT {columns} FROM payments p LEFT JOIN tasks t ON t.task_id = p.task_id "
            "WHERE p.request_hash = ? AND p.id <> ? AND p.header IS NOT NULL AND "
            "(p.state IN ('reserved', 'unknown', 'pending') OR (p.state = 'rejected' AND p.valid_before >= ?) "
            f"OR (p.state = 'paid' AND (t.status IS NULL OR t.status NOT IN ({_FINISHED})))) "
            "ORDER BY p.created_at LIMIT 1",
            (request_hash, exclude, int(cutoff)),
        )
        return _payment(rows[0]) if rows else None

    def _get(self, tx: _Tx, payment_id: str) -> PaymentRecord:
        rows = tx.execute(f"{_PAYMENTS_SELECT} WHERE id = ?", (payment_id,))
        if not rows:
            raise KeyError(f"no payment {payment_id!r} in this ledger")
        return _payment(rows[0])

    def _transition(self, tx: _Tx, payment_id: str, target: PaymentState) -> PaymentRecord:
        current = self._get(tx, payment_id)
        if target not in _TRANSITIONS.get(current.state, frozenset()):
            raise ValueError(f"payment {payment_id}: {current.state} -> {target} is not a legal transition")
        if target is not PaymentState.RELEASED and current.header is None:
            raise ValueError(
                f"payment {payment_id} has no journaled header, so nothing was sent and it cannot be {target}: "
                "release it instead"
            )
        return current

    def _update(self, tx: _Tx, payment_id: str, **columns: object) -> None:
        assignments = "".join(f"{column} = ?, " for column in columns)
        tx.execute(
            f"UPDATE payments SET {assignments}updated_at = ? WHERE id = ?",
            (*columns.values(), time.time(), payment_id),
        )

    def _usage(
        self, tx: _Tx, session_id: str | None, now: float, *, sandbox: bool = False, cutoff: float | None = None
    ) -> _Usage:
        cutoff = now if cutoff is None else cutoff
        row = tx.execute(_USAGE_SQL, (now - DAY, session_id, now - MINUTE, cutoff, int(sandbox)))[0]
        # SUM is NULL over no rows, and NUMERIC (Decimal) for BIGINT in PostgreSQL: int() both.
        return _Usage(*(int(value or 0) for value in row))

    def _frozen(self, tx: _Tx) -> tuple[bool, str]:
        frozen, reason = tx.execute("SELECT frozen, frozen_reason FROM settings WHERE id = 1")[0]
        return bool(frozen), str(reason)


def _check_approval(amount: int, ttl: float) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= _MAX_INT64:
        raise ValueError(f"an approval needs a positive int amount of atomic USDC units, got {amount!r}")
    if not ttl > 0:
        raise ValueError(f"an approval's time to live must be positive, got {ttl!r}")


def _insert_approval(tx: _Tx, record: ApprovalRecord) -> None:
    tx.execute(
        f"INSERT INTO approvals ({', '.join(_APPROVAL_COLUMNS)}) VALUES ({', '.join('?' * len(_APPROVAL_COLUMNS))})",
        tuple(getattr(record, c) if c != "state" else record.state.value for c in _APPROVAL_COLUMNS),
    )


def _same_payee(approval: ApprovalRecord, pay_to: str, network: str) -> bool:
    """Whether an approval was given for this payee on this network (an approval binds both: issue 22 d)."""
    return approval.pay_to.lower() == pay_to.lower() and approval.network == network


def _in_flight(record: PaymentRecord) -> PaymentInFlightError:
    return PaymentInFlightError(
        f"a payment for this exact request is already {record.state.value} ({format_usdc(record.amount)}, "
        f"payment {record.id}{f', task {record.task_id}' if record.task_id else ''}), so no second one was "
        "signed. Wait for it, check it with `imagine-agent receipts` / `imagine-agent reconcile`, or ask for a "
        "new video on purpose (--new, new=True).",
        payment_id=record.id,
        state=record.state.value,
    )


def _limit(limit: int | None) -> str:
    if limit is None:
        return ""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative int, got {limit!r}")
    return f" LIMIT {limit}"
