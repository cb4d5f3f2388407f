"""``imagine-agent budget | receipts | reconcile``: the books, read and governed without a key."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ._common import AsJson, LedgerBaseUrl, Real, Sandbox, _books, _settings, _which
from ._output import _begin, _echo, _emit, _emit_csv


def budget(
    freeze: Annotated[
        bool, typer.Option("--freeze", help="Kill switch: stop all payments now, sandbox ones too")
    ] = False,
    unfreeze: Annotated[bool, typer.Option("--unfreeze", help="Allow payments again")] = False,
    sandbox: Sandbox = False,
    real: Real = False,
    address: Annotated[
        Optional[str], typer.Option(help="Wallet address to show (default: from the key or ledger)")
    ] = None,
    base_url: LedgerBaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Left today, left in total, largest next payment; spent, reserved, unknown; --freeze/--unfreeze. No key."""
    _begin(as_json, sandbox=sandbox or None)
    if freeze and unfreeze:
        raise typer.BadParameter("--freeze and --unfreeze contradict each other: give one")
    with _books(_settings(base_url, as_json=as_json), sandbox=_which(sandbox, real), address=address) as books:
        if freeze:
            books.freeze("frozen from the CLI", source="cli")
        if unfreeze:
            books.unfreeze(source="cli")
        report = books.budget()
        if as_json:
            _emit(report.to_json())
            return
        from ..money import format_usdc

        t, c = report.totals, report.caps

        def fmt(v: int | None) -> str:
            return "unlimited" if v is None else format_usdc(v)

        which = "sandbox books (demo money)" if report.sandbox else "real books (real money)"
        _echo(f"wallet {report.address} · {which}{'  FROZEN' if t.frozen else ''}")
        _echo(report.vocabulary())
        _echo(f"spent {format_usdc(t.spent)} · reserved {format_usdc(t.reserved)} · unknown {format_usdc(t.unknown)}")
        _echo(f"caps: per call {fmt(c.per_call)} · daily {fmt(c.daily)} · total {fmt(c.total)}")
        if report.other is not None:
            _echo(f"also, apart: {report.other.line()}")


_RECEIPT_KEYS = [
    "id",
    "state",
    "amount",
    "amountUsdc",
    "asset",
    "network",
    "payTo",
    "payer",
    "nonce",
    "taskId",
    "transaction",
    "reason",
    "origin",
    "sandbox",
    "createdAt",
]


def receipts(
    limit: Annotated[Optional[int], typer.Option(min=0, help="Newest N only")] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout")] = False,
    sandbox: Sandbox = False,
    real: Real = False,
    base_url: LedgerBaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Every payment: task, amount, transaction, state, and which server it paid. No key needed."""
    _begin(as_json, sandbox=sandbox or None)
    with _books(_settings(base_url, as_json=as_json), sandbox=_which(sandbox, real)) as books:
        rows = [_receipt_row(r) for r in books.receipts(limit)]
        others = [_receipt_row(r) for r in books.other_receipts(limit)]
        sandbox = books.sandbox
        if as_json:
            _emit(
                {
                    "payments": rows,
                    "books": "sandbox" if sandbox else "real",
                    "otherBooks": {"books": "real" if sandbox else "sandbox", "payments": others},
                }
            )
        elif csv_out:
            _emit_csv(rows, _RECEIPT_KEYS)
        else:
            from ..books import BOOK_LABELS
            from ..money import format_usdc

            for label, shown in ((BOOK_LABELS[sandbox], rows), (BOOK_LABELS[not sandbox], others)):
                if shown is others and not others:
                    break
                _echo(f"{label}: {len(shown)} payment(s)" + ("" if shown is rows else ", apart"))
                for r in shown:
                    kind = "sandbox" if r["sandbox"] else "real"
                    _echo(
                        f"  {r['createdAt']}  {r['state']:<9} {format_usdc(int(r['amount'])):>17}  {kind:<7} "
                        f"task {r['taskId'] or '-'}  tx {r['transaction'] or '-'}  {r['origin'] or ''}".rstrip()
                    )
            if not rows:
                _echo("no sandbox payments yet" if sandbox else "no payments yet")


def _receipt_row(record: Any) -> dict[str, Any]:
    from ..service.results import receipt_json

    return receipt_json(record)


def reconcile(
    sandbox: Sandbox = False, real: Real = False, base_url: LedgerBaseUrl = None, as_json: AsJson = False
) -> None:
    """Settle what can be proven: release expired rejected payments, flag interrupted ones. No key needed."""
    _begin(as_json, sandbox=sandbox or None)
    with _books(_settings(base_url, as_json=as_json), sandbox=_which(sandbox, real)) as books:
        changed = books.reconcile()
        if as_json:
            _emit({"changed": [_receipt_row(r) for r in changed]})
        else:
            _echo(f"{len(changed)} payment(s) updated")
            for r in changed:
                _echo(f"  {r.id}: {r.state.value} ({r.reason})")
