"""The operator's books: the one facade over budget, receipts, approvals, audit, kill switch and reconcile.

Every surface (CLI, console, MCP, plugin, service) reads and decides through ``Books``; none opens a ledger
for books purposes. The books a command acts on follow the API it points at (money-safety rule 8): no base
URL (the embedded sandbox) or a loopback server that says it is the sandbox → the sandbox books
(``DATA_DIR/sandbox-ledger.sqlite3``); any other API → the real books (``IMAGINE_LEDGER_URL`` or
``DATA_DIR/ledger.sqlite3``). Every view also carries the other books, labelled and counted apart, and an
approval id is found in either, so an id a surface prints works with the command it names. The kill switch
always lives in the real books and stops both. No key, no password, and no server beyond one probe.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..config import Settings
from ..errors import ConfigurationError
from ..ledger import ApprovalRecord as ApprovalRecord  # re-exported: the surfaces' record types come from here
from ..ledger import ApprovalState as ApprovalState
from ..ledger import AuditEvent as AuditEvent
from ..ledger import BudgetTotals as BudgetTotals
from ..ledger import Caps as Caps
from ..ledger import Ledger as Ledger
from ..ledger import PaymentRecord as PaymentRecord
from ..ledger import PaymentState as PaymentState
from ..ledger import TaskRecord as TaskRecord
from ..ledger import open_ledger
from ..money import format_usdc
from ..wallet.policy import PaymentPolicy
from .build import claims_sandbox_server, policy_from, public_address, sandbox_ledger_location
from .reconcile import reconcile_ledger as reconcile_ledger
from .results import book_summary_json, budget_json

__all__ = [
    "BOOK_LABELS",
    "PAYMENT_STATES",
    "BookSummary",
    "Booked",
    "Books",
    "BudgetReport",
    "follows_sandbox",
    "reconcile_ledger",
]

T = TypeVar("T")
PAYMENT_STATES = tuple(state.value for state in PaymentState)
BOOK_LABELS = {True: "sandbox books (demo money)", False: "real books (real money)"}


def follows_sandbox(settings: Settings) -> bool:
    """Whether the API ``settings`` point at keeps sandbox books: none (embedded) or a loopback sandbox."""
    if settings.base_url is None:
        return True
    return claims_sandbox_server(settings.base_url, settings.timeout)


@dataclass(frozen=True)
class Booked(Generic[T]):
    """One record and the books it lives in."""

    sandbox: bool
    record: T

    @property
    def books(self) -> str:
        return "sandbox" if self.sandbox else "real"


@dataclass(frozen=True)
class BookSummary:
    """The other books at a glance: counted apart, never added to these."""

    sandbox: bool
    spent: int = 0
    reserved: int = 0
    unknown: int = 0
    payments: int = 0
    awaiting_approvals: int = 0

    @property
    def label(self) -> str:
        return BOOK_LABELS[self.sandbox]

    def to_json(self) -> dict[str, Any]:
        return book_summary_json(self)

    def line(self) -> str:
        return (
            f"{self.label}: spent {format_usdc(self.spent)} · reserved {format_usdc(self.reserved)} · unknown "
            f"{format_usdc(self.unknown)} · {self.payments} payment(s) · {self.awaiting_approvals} awaiting "
            "approval"
        )


@dataclass(frozen=True)
class BudgetReport:
    """Where the budget stands, in the one vocabulary: left today, left in total, largest next payment."""

    totals: BudgetTotals
    caps: Caps
    approval_threshold: int | None
    address: str
    sandbox: bool = False  # the sandbox windows (demo money), not the real ones
    other: BookSummary | None = None  # the other books, labelled and counted apart

    @property
    def left_today(self) -> int | None:
        return self.totals.remaining_daily

    @property
    def left_in_total(self) -> int | None:
        return self.totals.remaining_total

    @property
    def largest_next_payment(self) -> int:
        """The most one payment could take right now: the per-call cap and every window (0 when frozen)."""
        if self.totals.frozen:
            return 0
        t = self.totals
        windows = (self.caps.per_call, t.remaining_daily, t.remaining_total, t.remaining_session)
        return max(0, min(w for w in windows if w is not None))

    def vocabulary(self) -> str:
        """``left today X · left in total Y · largest next payment Z`` (the words every surface uses)."""

        def fmt(v: int | None) -> str:
            return "unlimited" if v is None else format_usdc(v)

        return (
            f"left today {fmt(self.left_today)} · left in total {fmt(self.left_in_total)} · "
            f"largest next payment {format_usdc(self.largest_next_payment)}"
        )

    def to_json(self) -> dict[str, Any]:
        return budget_json(self)


def _exists(location: str | Path) -> bool:
    """A ledger location worth opening as the *other* books: a server URL, or a SQLite file already there."""
    text = str(location)
    return ("://" in text and not text.startswith("sqlite")) or Path(text).is_file()


class Books:
    """The operator facade over both books. ``Books(settings)`` opens them (close it, or use ``with``);
    ``Books.over(...)`` borrows ledgers a service already holds."""

    def __init__(self, settings: Settings, *, sandbox: bool | None = None, address: str | None = None) -> None:
        self.settings = settings
        self.sandbox = follows_sandbox(settings) if sandbox is None else sandbox
        self._address = address
        self._owned: list[Ledger] = []
        self.session_id: str | None = None
        self.policy: PaymentPolicy = policy_from(settings)
        self.rpc_url = None if self.sandbox else settings.rpc_url  # Base's chain says nothing of demo settlements
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.operator: Ledger = self._open(settings.ledger_location)
            sandbox_location = sandbox_ledger_location(settings)
            if self.sandbox:
                self.ledger: Ledger = self._open(sandbox_location)
                self.other: Ledger | None = self.operator
            else:
                self.ledger = self.operator
                self.other = self._open(sandbox_location) if _exists(sandbox_location) else None
        except BaseException:
            self.close()
            raise

    @classmethod
    def over(
        cls,
        ledger: Ledger,
        settings: Settings,
        *,
        sandbox: bool,
        kill_switch: Ledger | None = None,
        address: str | None = None,
        session_id: str | None = None,
        policy: PaymentPolicy | None = None,
        rpc_url: str | None = None,
    ) -> Books:
        """A view over ledgers the caller owns (and closes): the service's, the console's."""
        books = cls.__new__(cls)
        books.settings, books.sandbox, books._address, books._owned = settings, sandbox, address, []
        books.session_id, books.policy, books.rpc_url = session_id, policy or policy_from(settings), rpc_url
        books.ledger = ledger
        books.operator = kill_switch or ledger
        books.other = kill_switch if sandbox else None
        return books

    def _open(self, location: str | Path) -> Ledger:
        try:
            opened = open_ledger(location)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(
                f"cannot open the books at {location} (IMAGINE_DATA_DIR / IMAGINE_LEDGER_URL): {exc}"
            ) from None
        self._owned.append(opened)
        return opened

    def close(self) -> None:
        while self._owned:
            self._owned.pop().close()

    def __enter__(self) -> Books:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def label(self) -> str:
        return BOOK_LABELS[self.sandbox]

    @contextmanager
    def _other(self) -> Iterator[Ledger | None]:
        """The other books: held, or opened for this read when they exist (never created by a read)."""
        if self.other is not None:
            yield self.other
            return
        location: str | Path = self.settings.ledger_location if self.sandbox else sandbox_ledger_location(self.settings)
        if not _exists(location):
            yield None
            return
        try:
            opened = open_ledger(location)
        except (OSError, sqlite3.Error):
            yield None
            return
        with opened:
            yield opened

    # ------------------------------------------------------------------------------------------ budget
    @property
    def address(self) -> str:
        """``--address``, else the configured key or keystore's public address, else the newest payer."""
        if self._address:
            return self._address
        if not self.sandbox or self.settings.base_url is not None:
            known = public_address(self.settings)
            if known:
                return known
        newest = self.ledger.payments(limit=1)
        return newest[0].payer if newest else "unknown"

    def budget(self) -> BudgetReport:
        # With an RPC (real books) the chain decides what is freed, not the clock (rule 9): as the wallet counts.
        totals = self.ledger.totals(
            self.policy.caps, session_id=self.session_id, sandbox=self.sandbox, chain_decides=bool(self.rpc_url)
        )
        if not totals.frozen and self.operator.is_frozen():
            totals = replace(totals, frozen=True)
        return BudgetReport(
            totals,
            self.policy.caps,
            self.policy.approval_threshold,
            self.address,
            sandbox=self.sandbox,
            other=self.other_summary(),
        )

    def other_summary(self) -> BookSummary | None:
        with self._other() as other:
            if other is None:
                return None
            sandbox = not self.sandbox
            t = other.totals(
                self.policy.caps, sandbox=sandbox, chain_decides=bool(self.settings.rpc_url) and not sandbox
            )
            return BookSummary(
                sandbox,
                t.spent,
                t.reserved,
                t.unknown,
                len(other.payments()),
                len(other.approvals(states=[ApprovalState.AWAITING])),
            )

    # ---------------------------------------------------------------------------------------- receipts
    def receipts(self, limit: int | None = None) -> list[PaymentRecord]:
        return self.ledger.payments(limit=limit)

    def other_receipts(self, limit: int | None = None) -> list[PaymentRecord]:
        with self._other() as other:
            return [] if other is None else other.payments(limit=limit)

    def all_receipts(self, limit: int | None = None) -> list[Booked[PaymentRecord]]:
        """These books first, then the other ones, each labelled."""
        return [Booked(self.sandbox, r) for r in self.receipts(limit)] + [
            Booked(not self.sandbox, r) for r in self.other_receipts(limit)
        ]

    def tasks(self, *, pending_only: bool = False, limit: int | None = None) -> list[Booked[TaskRecord]]:
        found = [Booked(self.sandbox, t) for t in self.ledger.tasks(pending_only=pending_only, limit=limit)]
        with self._other() as other:
            if other is not None:
                found += [Booked(not self.sandbox, t) for t in other.tasks(pending_only=pending_only, limit=limit)]
        return found

    def pending(self) -> list[TaskRecord]:
        return self.ledger.tasks(pending_only=True)

    def task(self, task_id: str) -> Booked[TaskRecord] | None:
        found = self.ledger.get_task(task_id)
        if found is not None:
            return Booked(self.sandbox, found)
        with self._other() as other:
            found = other.get_task(task_id) if other is not None else None
        return Booked(not self.sandbox, found) if found is not None else None

    # --------------------------------------------------------------------------------------- approvals
    def approvals(self, *, show_all: bool = False, limit: int | None = None) -> list[Booked[ApprovalRecord]]:
        """Both books' queues (awaiting only unless ``show_all``), these books first, each labelled."""
        states = None if show_all else [ApprovalState.AWAITING]
        found = [Booked(self.sandbox, a) for a in self.ledger.approvals(states=states, limit=limit)]
        with self._other() as other:
            if other is not None:
                found += [Booked(not self.sandbox, a) for a in other.approvals(states=states, limit=limit)]
        return found

    def decide(self, approval_id: str, *, approve: bool, decided_by: str, reason: str = "") -> Booked[ApprovalRecord]:
        """Approve or deny an approval found in either books (KeyError: in neither; ValueError: decided)."""
        for sandbox, ledger in self._both():
            try:
                ledger.get_approval(approval_id)
            except KeyError:
                continue
            entry = ledger.decide_approval(
                approval_id, approve=approve, decided_by=decided_by, reason=reason, ttl=self.settings.approval_ttl
            )
            return Booked(sandbox, entry)
        raise KeyError(approval_id)

    def _both(self) -> Iterator[tuple[bool, Ledger]]:
        yield self.sandbox, self.ledger
        with self._other() as other:
            if other is not None:
                yield not self.sandbox, other

    # ------------------------------------------------------------------------------------------- audit
    def audit(self, *, kinds: list[str] | None = None, limit: int | None = None) -> list[Booked[AuditEvent]]:
        """Both books' audit lines, newest first, each labelled."""
        found = [
            Booked(sandbox, e) for sandbox, ledger in self._both() for e in ledger.events(kinds=kinds, limit=limit)
        ]
        found.sort(key=lambda b: b.record.created_at, reverse=True)
        return found[:limit] if limit is not None else found

    def events(
        self, *, kinds: list[str] | None = None, after_id: int | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        """These books' audit lines (``after_id``: only newer ones, oldest first, for a live feed)."""
        return self.ledger.events(kinds=kinds, after_id=after_id, limit=limit)

    @property
    def display(self) -> str:
        """Where these books are, without a password (``IMAGINE_LEDGER_URL`` is shown as its display form)."""
        ledger = self.ledger
        return str(getattr(ledger, "display", None) or getattr(ledger, "path", "") or repr(ledger))

    # ------------------------------------------------------------------------------------- kill switch
    def is_frozen(self) -> bool:
        return self.operator.is_frozen()

    def freeze(self, reason: str = "", *, source: str = "operator") -> None:
        self.operator.set_frozen(True, reason=reason, source=source)  # audited by the ledger, naming the surface

    def unfreeze(self, *, source: str = "operator") -> None:
        self.operator.set_frozen(False, source=source)

    # --------------------------------------------------------------------------------------- reconcile
    def unsettled(self) -> list[PaymentRecord]:
        return self.ledger.payments(states=[PaymentState.UNKNOWN, PaymentState.PENDING, PaymentState.RESERVED])

    def reconcile(self, now: float | None = None) -> list[PaymentRecord]:
        return reconcile_ledger(self.ledger, self.rpc_url, now)
