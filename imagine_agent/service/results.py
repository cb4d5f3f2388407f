"""One JSON shape per record, so the CLI, MCP, the plugin, the tools and the console say the same thing.

A receipt (``receipt_json``), an approval (``approval_json``), the budget (``budget_json``, the other books in
``book_summary_json``), and what a finished video comes with besides the file: its public media page and
the coin, if one was deployed (``delivery_facts``; DESIGN rule 6: whenever a coin is deployed, say that the
paying wallet becomes its creator, or that the token existed before). Amounts are ``money.usdc_fields``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

from ..models import TaskStatus
from ..money import format_usdc, usdc_fields

if TYPE_CHECKING:
    from ..ledger import ApprovalRecord, BudgetTotals, Caps, PaymentRecord

__all__ = ["approval_json", "book_summary_json", "budget_json", "coin_line", "delivery_facts", "receipt_json"]


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


def receipt_json(record: PaymentRecord) -> dict[str, Any]:
    """A payment as scripts, MCP clients and the console see it: never the signed header (a bearer instrument)."""
    return {
        "id": record.id,
        "state": str(record.state.value),
        **usdc_fields(record.amount),
        "asset": record.asset,
        "network": record.network,
        "payTo": record.pay_to,
        "payer": record.payer,
        "nonce": record.nonce,
        "taskId": record.task_id,
        "transaction": record.transaction,
        "reason": record.reason,
        "origin": record.origin,
        "sandbox": record.sandbox,
        "createdAt": _iso(record.created_at),
    }


def approval_json(entry: ApprovalRecord) -> dict[str, object]:
    """A queue entry as scripts and the console see it (amounts as atomic-unit strings)."""
    return {
        "id": entry.id,
        "state": entry.state.value,
        "amount": str(entry.amount),
        "amountUsdc": format_usdc(entry.amount, unit=False),
        "asset": entry.asset,
        "network": entry.network,
        "payTo": entry.pay_to,
        "description": entry.description,
        "requester": entry.requester,
        "requestHash": entry.request_hash,
        "paymentId": entry.payment_id,
        "decidedBy": entry.decided_by,
        "reason": entry.reason,
        "createdAt": _iso(entry.created_at),
        "expiresAt": _iso(entry.expires_at),
        "decidedAt": _iso(entry.decided_at),
        "surface": entry.surface,
    }


class _Summary(Protocol):
    """The other books at a glance (``books.BookSummary``)."""

    @property
    def sandbox(self) -> bool: ...
    @property
    def label(self) -> str: ...
    @property
    def spent(self) -> int: ...
    @property
    def reserved(self) -> int: ...
    @property
    def unknown(self) -> int: ...
    @property
    def payments(self) -> int: ...
    @property
    def awaiting_approvals(self) -> int: ...


class _Budget(Protocol):
    """Where the budget stands (``books.BudgetReport``)."""

    @property
    def totals(self) -> BudgetTotals: ...
    @property
    def caps(self) -> Caps: ...
    @property
    def approval_threshold(self) -> int | None: ...
    @property
    def address(self) -> str: ...
    @property
    def sandbox(self) -> bool: ...
    @property
    def other(self) -> _Summary | None: ...
    @property
    def left_today(self) -> int | None: ...
    @property
    def left_in_total(self) -> int | None: ...
    @property
    def largest_next_payment(self) -> int: ...


def book_summary_json(summary: _Summary) -> dict[str, Any]:
    """The other books, counted apart: never added to these."""
    s = summary
    return {
        "books": "sandbox" if s.sandbox else "real",
        "label": s.label,
        **usdc_fields(s.spent, "spent"),
        **usdc_fields(s.reserved, "reserved"),
        **usdc_fields(s.unknown, "unknown"),
        "payments": s.payments,
        "awaitingApprovals": s.awaiting_approvals,
    }


def budget_json(report: _Budget) -> dict[str, Any]:
    """The budget in the one vocabulary (left today, left in total, largest next payment), caps and windows."""
    t, c = report.totals, report.caps
    return {
        "address": report.address,
        "books": "sandbox" if report.sandbox else "real",
        **usdc_fields(t.spent, "spent"),
        **usdc_fields(t.reserved, "reserved"),
        **usdc_fields(t.unknown, "unknown"),
        **usdc_fields(report.left_today, "leftToday"),
        **usdc_fields(report.left_in_total, "leftInTotal"),
        **usdc_fields(report.largest_next_payment, "largestNextPayment"),
        "remaining": {
            **usdc_fields(t.remaining_daily, "daily"),
            **usdc_fields(t.remaining_total, "total"),
            **usdc_fields(t.remaining_session, "session"),
            **usdc_fields(c.per_call, "perCall"),
        },
        "caps": {
            **usdc_fields(c.per_call, "perCall"),
            **usdc_fields(c.daily, "daily"),
            **usdc_fields(c.total, "total"),
            **usdc_fields(c.session, "session"),
            "ratePerMinute": c.rate_per_minute,
            **usdc_fields(report.approval_threshold, "approvalThreshold"),
        },
        "frozen": t.frozen,
        "sandbox": report.sandbox,
        "otherBooks": book_summary_json(report.other) if report.other is not None else None,
    }


def delivery_facts(status: TaskStatus | None, payer: str | None) -> dict[str, Any]:
    """``mediaUrl`` and ``coin`` ({address, symbol, chain, external, creator, note}) when the result has them."""
    if status is None:
        return {}
    out: dict[str, Any] = {}
    if status.media_url:
        out["mediaUrl"] = status.media_url
    token = status.coin
    if token is not None:
        coin: dict[str, Any] = {
            "address": token.address,
            "symbol": token.symbol,
            "chain": token.chain,
            "external": token.external,
        }
        if token.metadata is not None and token.metadata.name:
            coin["name"] = token.metadata.name
        if token.external:
            coin["note"] = "the token existed before this video; it was attached, not deployed for it"
        else:
            coin["creator"] = payer
            coin["note"] = (
                f"a coin was deployed for this video; the paying wallet {payer} is its creator and "
                "earns its trading fees"
            )
        out["coin"] = coin
    if status.transaction:
        out["txHash"] = status.transaction
    return out


def coin_line(facts: dict[str, Any]) -> str | None:
    """One line about the coin for text surfaces, or None when there is none."""
    coin = facts.get("coin")
    if not coin:
        return None
    symbol = f"${coin['symbol']} " if coin.get("symbol") else ""
    where = f" on {coin['chain']}" if coin.get("chain") else ""
    return f"{symbol}{coin['address']}{where}: {coin['note']}"
