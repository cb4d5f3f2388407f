"""``imagine-agent approvals list|approve ID|deny ID`` (and, in ``servers``, ``imagine-agent console``).

Both act through the books facade: the books of the API a command points at (no URL or a loopback sandbox:
the sandbox books; a real API: the real books) and the other books beside them, labelled. An approval id is
found in either, so the command a bot prints works as printed. They need no key: deciding signs nothing.
``--json`` prints one JSON object.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import AsJson, _open
from ._common import BooksBaseUrl as BaseUrl
from ._output import _echo, _emit, _fail

__all__ = ["approvals_app"]

approvals_app = typer.Typer(
    help="The approvals queue: payments over the threshold waiting for the operator.", no_args_is_help=True
)
ApprovalId = Annotated[str, typer.Argument(help="The approval id `imagine-agent approvals list` shows")]


@approvals_app.command("list")
def list_approvals(
    show_all: Annotated[bool, typer.Option("--all", help="Decided and expired ones too")] = False,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Payments awaiting the operator's decision (newest first), in both books, each labelled."""
    from ..approvals import approval_json
    from ..books import BOOK_LABELS
    from ..money import format_usdc

    with _open(as_json, base_url) as books:
        entries = books.approvals(show_all=show_all)
        sandbox = books.sandbox
    if as_json:
        _emit(
            {
                "approvals": [{**approval_json(e.record), "books": e.books} for e in entries],
                "books": "sandbox" if sandbox else "real",
                "sandbox": sandbox,
            }
        )
        return
    for e in entries:
        a = e.record
        _echo(
            f"{a.id}  {a.state.value:<17} {format_usdc(a.amount):>16}  by {a.requester:<12} "
            f"{a.description[:60]!r}  pay {a.pay_to} on {a.network}  [{BOOK_LABELS[e.sandbox]}]"
        )
    if not entries:
        _echo("nothing is waiting for approval (sandbox or real books)")


def _decide(approval_id: str, approve: bool, reason: str, as_json: bool, base_url: str | None) -> None:
    from ..approvals import approval_json
    from ..books import BOOK_LABELS

    with _open(as_json, base_url) as books:
        try:
            found = books.decide(approval_id, approve=approve, decided_by="cli", reason=reason)
        except KeyError:
            raise _fail(
                f"no approval {approval_id!r} in the sandbox or the real books: see `imagine-agent approvals list`",
                "not_found",
                2,
                as_json,
                books.sandbox,
            ) from None
        except ValueError as exc:
            raise _fail(str(exc), "already_decided", 2, as_json, books.sandbox) from None
    entry, body = found.record, approval_json(found.record)
    if as_json:
        _emit({"approval": {**body, "books": found.books}, "sandbox": found.sandbox})
    elif approve:
        _echo(
            f"approved {entry.id} ({BOOK_LABELS[found.sandbox]}): the same request may now pay up to "
            f"{body['amountUsdc']} USDC, once, until {body['expiresAt']}"
        )
    else:
        _echo(f"denied {entry.id} ({BOOK_LABELS[found.sandbox]}): final; the requester is told so on its next try")


@approvals_app.command("approve")
def approve(approval_id: ApprovalId, base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """Approve one queued payment: that exact request, at that price or less, once, before it expires."""
    _decide(approval_id, True, "", as_json, base_url)


@approvals_app.command("deny")
def deny(
    approval_id: ApprovalId,
    reason: Annotated[str, typer.Option(help="Why (shown to the requester)")] = "",
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Deny one queued payment. A denial is final for that request."""
    _decide(approval_id, False, reason, as_json, base_url)
