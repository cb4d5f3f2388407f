"""``imagine-agent approvals list|approve ID|deny ID`` and ``imagine-agent console``.

Both act through the books facade: the books of the API a command points at (no URL or a loopback sandbox:
the sandbox books; a real API: the real books) and the other books beside them, labelled. An approval id is
found in either, so the command a bot prints works as printed. They need no key: deciding signs nothing.
``--json`` prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from .books import Books

__all__ = ["approvals_app", "console"]

approvals_app = typer.Typer(help="The approvals queue: payments over the threshold waiting for the operator.",
                            no_args_is_help=True)
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")]
ApprovalId = Annotated[str, typer.Argument(help="The approval id `imagine-agent approvals list` shows")]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="The API whose books come first (env "
                                                "IMAGINE_BASE_URL); unset = the embedded sandbox's")]


def _out(obj: dict[str, Any], sandbox: bool) -> None:
    sys.stdout.write(json.dumps({**obj, "sandbox": obj.get("sandbox", sandbox)}, separators=(",", ":"),
                                default=str) + "\n")


def _fail(message: str, code: str, exit_code: int, as_json: bool, sandbox: bool = False) -> typer.Exit:
    if as_json:
        _out({"error": "ApprovalError", "code": code, "message": message, "exitCode": exit_code}, sandbox)
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(exit_code)


def _open(as_json: bool, base_url: str | None = None) -> Books:
    from .books import Books
    from .config import load_settings
    from .errors import ImagineError

    settings = load_settings(**({"base_url": base_url} if base_url is not None else {}))  # errors: exit 2
    try:
        return Books(settings)
    except (ImagineError, OSError) as exc:
        raise _fail(f"cannot open the books: {exc}", "configuration", 2, as_json) from None


@approvals_app.command("list")
def list_approvals(
    show_all: Annotated[bool, typer.Option("--all", help="Decided and expired ones too")] = False,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Payments awaiting the operator's decision (newest first), in both books, each labelled."""
    from .approvals import approval_json
    from .books import BOOK_LABELS
    from .money import format_usdc

    with _open(as_json, base_url) as books:
        entries = books.approvals(show_all=show_all)
        sandbox = books.sandbox
    if as_json:
        _out({"approvals": [{**approval_json(e.record), "books": e.books} for e in entries],
              "books": "sandbox" if sandbox else "real"}, sandbox)
        return
    for e in entries:
        a = e.record
        typer.echo(f"{a.id}  {a.state.value:<17} {format_usdc(a.amount):>16}  by {a.requester:<12} "
                   f"{a.description[:60]!r}  pay {a.pay_to} on {a.network}  [{BOOK_LABELS[e.sandbox]}]")
    if not entries:
        typer.echo("nothing is waiting for approval (sandbox or real books)")


def _decide(approval_id: str, approve: bool, reason: str, as_json: bool, base_url: str | None) -> None:
    from .approvals import approval_json
    from .books import BOOK_LABELS

    with _open(as_json, base_url) as books:
        try:
            found = books.decide(approval_id, approve=approve, decided_by="cli", reason=reason)
        except KeyError:
            raise _fail(f"no approval {approval_id!r} in the sandbox or the real books: see `imagine-agent "
                        "approvals list`", "not_found", 2, as_json, books.sandbox) from None
        except ValueError as exc:
            raise _fail(str(exc), "already_decided", 2, as_json, books.sandbox) from None
    entry, body = found.record, approval_json(found.record)
    if as_json:
        _out({"approval": {**body, "books": found.books}}, found.sandbox)
    elif approve:
        typer.echo(f"approved {entry.id} ({BOOK_LABELS[found.sandbox]}): the same request may now pay up to "
                   f"{body['amountUsdc']} USDC, once, until {body['expiresAt']}")
    else:
        typer.echo(f"denied {entry.id} ({BOOK_LABELS[found.sandbox]}): final; the requester is told so on its "
                   "next try")


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


def console(
    host: Annotated[str, typer.Option(help="Interface (default loopback only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free one)")] = 8403,
    base_url: BaseUrl = None,
) -> None:
    """The operator's web console: budget, receipts, videos, jobs, approvals, kill switch, audit."""
    from .console import ConsoleServer

    books = _open(False, base_url)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach it and has the token can freeze or approve",
                   err=True)
    with books:
        try:
            server = ConsoleServer(books, books.settings, host=host, port=port).start()
        except OSError as exc:
            raise _fail(f"cannot listen on {host}:{port}: {exc.strerror}", "configuration", 2, False) from None
        typer.echo(f"imagine-agent console on {server.url}\nOpen: {server.login_url}", err=True)
        sys.stdout.write(server.login_url + "\n")
        sys.stdout.flush()
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
