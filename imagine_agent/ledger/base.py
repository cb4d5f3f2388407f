"""The payment ledger: reservations, payments and tasks — SQLite by default, PostgreSQL for fleets.

A budget is only safe if checking a cap and reserving the amount are one atomic step shared by every
process that can pay (money-safety rule 2), and if every signed header is journaled before it is sent
(rule 3). This module is that step and that journal. SQLite serializes writers with ``BEGIN IMMEDIATE``;
PostgreSQL with ``SELECT … FOR UPDATE`` on the singleton ``settings`` row. Every write, in both engines,
takes that one lock, so both engines behave the same: writes are short and rare, correctness first.

A payment moves through these states (anything else is a bug and raises ``ValueError``)::

    reserved  ──► paid | rejected | unknown | pending | released
    rejected  ──► released | paid | unknown | cancelled   (released only once it provably cannot settle)
    unknown   ──► paid | released | pending | cancelled   (reconciled by the operator or an RPC check)
    pending   ──► paid | unknown | released | cancelled   (the server said settlement_pending with a tx hash)

``pending``: the server accepted the payment and named a transaction that had not settled yet.
``cancelled``: the chain shows the authorization cancelled (``cancelAuthorization``): it can never settle,
so it no longer counts, but it stays visible as what it is instead of passing for a release.
Every state but ``released`` and ``cancelled`` counts against the caps. Amounts are atomic USDC units.

Every payment records the ``origin`` it paid (scheme://host:port) and whether that was a ``sandbox``. Sandbox
payments count against sandbox windows of the same caps, real ones against the real windows: demo money
never eats the real budget, and is never unlimited. The kill switch is one flag for both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any, Self, Unpack

from ..errors import BudgetExceededError, WalletFrozenError
from .records import (
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


class Ledger(ABC):
    """The payment journal and budget. Thread-safe and safe across processes sharing one store.

    Synchronous: async callers use ``asyncio.to_thread``.
    """

    @abstractmethod
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
        """Atomically check every cap and reserve ``amount``, before anything is signed.

        With ``approval_id``, the same transaction checks that the operator approved this request at this
        price or more and that the approval is unexpired and unused, and marks it used.
        Crossing 80 % / 95 % of a window records a ``warning`` audit event bound to the new payment.
        ``exclusive`` (what ``Wallet.authorize`` passes unless told ``new``): refuses with
        ``PaymentInFlightError`` while a signed payment for ``request_hash`` is reserved, unknown, pending
        or rejected-but-unexpired: attach-or-pay is decided here, under the lock.
        ``sandbox`` payments are checked against the sandbox windows of the same caps, real ones against
        the real windows: a demo never eats the real budget, and is never unlimited either.
        """

    @abstractmethod
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
        """Record the signed header of a reservation; call it before the header is sent.

        ``exclusive``: refuses (``PaymentInFlightError``) when another payment for the same request was
        journaled first (two signers raced past ``reserve``): the first to journal is the one that is sent.
        """

    @abstractmethod
    def release_unsigned(self, payment_id: str, *, reason: str) -> bool:
        """Release a reservation only while no header is journaled: one atomic step; False if it was not."""

    @abstractmethod
    def mark_paid(
        self, payment_id: str, *, task_id: str | None, transaction: str | None, reason: str | None = None
    ) -> None: ...

    @abstractmethod
    def mark_rejected(self, payment_id: str, *, reason: str) -> None: ...

    @abstractmethod
    def mark_unknown(self, payment_id: str, *, reason: str) -> None: ...

    @abstractmethod
    def mark_pending(self, payment_id: str, *, transaction: str, reason: str) -> None:
        """The server accepted the payment but its settlement (``transaction``) had not confirmed: spent."""

    @abstractmethod
    def mark_cancelled(self, payment_id: str, *, reason: str) -> None:
        """The chain shows the authorization cancelled: it can never settle, so it stops counting."""

    @abstractmethod
    def release(self, payment_id: str, *, reason: str) -> None:
        """Give the amount back: only for payments that provably did not and can no longer settle."""

    @abstractmethod
    def get(self, payment_id: str) -> PaymentRecord:
        """The payment with this id; ``KeyError`` if there is none."""

    @abstractmethod
    def find_open(
        self, request_hash: str, *, now: float | None = None, chain_decides: bool = False
    ) -> PaymentRecord | None:
        """The newest payment for this request that a re-run must attach to instead of paying again.

        A rejected payment counts until its ``valid_before`` passes: only then is a new signature for
        the same request provably safe (money-safety rule 3). ``chain_decides`` (an RPC of the right chain
        is configured, rule 9): the clock frees nothing; it counts until reconcile releases it by the chain.
        """

    @abstractmethod
    def in_flight(self) -> list[PaymentRecord]:
        """Payments still ``reserved``, oldest first: what a restarted process must resume or report."""

    @abstractmethod
    def payments(
        self,
        *,
        limit: int | None = None,
        states: Collection[PaymentState] | None = None,
        sandbox: bool | None = None,
    ) -> list[PaymentRecord]:
        """Payments, newest first; ``sandbox`` True/False keeps only sandbox/real ones."""

    @abstractmethod
    def upsert_task(self, task_id: str, **fields: Unpack[TaskFields]) -> TaskRecord: ...

    @abstractmethod
    def get_task(self, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    def tasks(self, *, pending_only: bool = False, limit: int | None = None) -> list[TaskRecord]:
        """Tasks, newest first; ``pending_only`` leaves out completed, failed and not_found ones."""

    @abstractmethod
    def completion_brackets(
        self, origin: str, model: str, duration: float, *, limit: int = 12
    ) -> list[tuple[float, float]]:
        """The most recent completed tasks of one kind, newest first: seconds from creation to the last
        sighting unfinished (0 when none) and to the first sighting completed. Failures never count."""

    @abstractmethod
    def totals(
        self,
        caps: Caps,
        *,
        session_id: str | None = None,
        now: float | None = None,
        sandbox: bool = False,
        chain_decides: bool = False,
    ) -> BudgetTotals:
        """The real windows, or with ``sandbox`` the sandbox ones; ``frozen`` is the one kill switch."""

    @abstractmethod
    def set_frozen(self, frozen: bool, *, reason: str = "", source: str = "operator") -> None:
        """The kill switch: while frozen, no process sharing this ledger can reserve.

        Every flip is written to the audit in the same transaction, naming ``source`` (the surface).
        """

    @abstractmethod
    def is_frozen(self) -> bool: ...

    # ---- the approvals queue and the audit

    @abstractmethod
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
        """The queue entry deciding this request at this price: an existing live one, else a new one awaiting.

        A denied entry is final: it is returned, never replaced, for that request. Nothing is reserved and
        nothing is signed here.
        """

    @abstractmethod
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
        """Approve (valid ``ttl`` seconds from now) or deny an entry still awaiting; ``ValueError`` otherwise."""

    @abstractmethod
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
        """Record a person's yes given outside the queue (a prompt, HITL, a callback, elicitation): an approved
        entry bound to this request, price ceiling, payee and network, for one payment to consume."""

    @abstractmethod
    def expire_approval(self, approval_id: str, *, reason: str) -> None:
        """Retire an approved entry no payment used (its payment was refused before reserving): never used later."""

    @abstractmethod
    def get_approval(self, approval_id: str) -> ApprovalRecord:
        """The entry with this id; ``KeyError`` if there is none."""

    @abstractmethod
    def find_approval(self, request_hash: str, *, now: float | None = None) -> ApprovalRecord | None:
        """The live entry (awaiting, approved or denied) deciding this request, if any."""

    @abstractmethod
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
        """The refusal ``reserve`` would raise right now (a preview: only ``reserve`` is atomic)."""

    @abstractmethod
    def approvals(
        self, *, states: Collection[ApprovalState] | None = None, limit: int | None = None, now: float | None = None
    ) -> list[ApprovalRecord]:
        """Queue entries, newest first (stale ones are shown as expired)."""

    @abstractmethod
    def record_event(self, kind: str, code: str, message: str, **fields: Any) -> AuditEvent:
        """Append one audit line (``fields``: amount, network, pay_to, request_hash, payment_id, approval_id,
        session_id, source, now)."""

    @abstractmethod
    def events(
        self,
        *,
        kinds: Collection[str] | None = None,
        payment_id: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Audit lines, newest first (``after_id``: only newer ones, oldest first, for a live feed)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
