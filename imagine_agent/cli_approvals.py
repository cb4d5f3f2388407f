"""``imagine-agent approvals list|approve ID|deny ID`` and ``imagine-agent console``.

Both act on the operator's ledger (``IMAGINE_LEDGER_URL`` or DATA_DIR/ledger.sqlite3) whether or not a base
URL is set, and need no key: deciding an approval signs nothing. ``--json`` prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from .config import Settings
    from .ledger import Ledger

__all__ = ["approvals_app", "console"]

approvals_app = typer.Typer(help="The approvals queue: payments over the threshold waiting for the operator.",
                            no_args_is_help=True)
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")]
ApprovalId = Annotated[str, typer.Argument(help="The approval id `imagine-agent approvals list` shows")]


def _out(obj: Any) -> None:
    sys.stdout.write(json.dumps({**obj, "sandbox": False}, separators=(",", ":"), default=str) + "\n")  # real ledger


def _fail(message: str, code: str, exit_code: int, as_json: bool) -> typer.Exit:
    if as_json:
        _out({"error": "ApprovalError", "code": code, "message": message, "exitCode": exit_code})
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(exit_code)


def _open(as_json: bool) -> tuple[Settings, Ledger]:
    from .cli import _settings
    from .errors import ImagineError
    from .ledger import open_ledger

    settings = _settings(as_json=as_json)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return settings, open_ledger(settings.ledger_location)
    except (ImagineError, OSError) as exc:
        raise _fail(f"cannot open the ledger: {exc}", "configuration", 2, as_json) from None


@approvals_app.command("list")
def list_approvals(
    show_all: Annotated[bool, typer.Option("--all", help="Decided and expired ones too")] = False,
    as_json: AsJson = False,
) -> None:
    """Payments awaiting the operator's decision (newest first)."""
    from .approvals import approval_json
    from .ledger import ApprovalState
    from .money import format_usdc

    _, ledger = _open(as_json)
    with ledger:
        entries = ledger.approvals(states=None if show_all else [ApprovalState.AWAITING])
    if as_json:
        _out({"approvals": [approval_json(e) for e in entries]})
        return
    for e in entries:
        typer.echo(f"{e.id}  {e.state.value:<17} {format_usdc(e.amount):>16}  by {e.requester:<12} "
                   f"{e.description[:60]!r}  pay {e.pay_to} on {e.network}")
    if not entries:
        typer.echo("nothing is waiting for approval")


def _decide(approval_id: str, approve: bool, reason: str, as_json: bool) -> None:
    from .approvals import approval_json

    settings, ledger = _open(as_json)
    with ledger:
        try:
            entry = ledger.decide_approval(approval_id, approve=approve, decided_by="cli", reason=reason,
                                           ttl=settings.approval_ttl)
        except KeyError:
            raise _fail(f"no approval {approval_id!r}: see `imagine-agent approvals list`", "not_found", 2,
                        as_json) from None
        except ValueError as exc:
            raise _fail(str(exc), "already_decided", 2, as_json) from None
    if as_json:
        _out({"approval": approval_json(entry)})
    elif approve:
        typer.echo(f"approved {entry.id}: the same request may now pay up to {approval_json(entry)['amountUsdc']} "
                   f"USDC, once, until {approval_json(entry)['expiresAt']}")
    else:
        typer.echo(f"denied {entry.id}: final; the requester is told so on its next try")


@approvals_app.command("approve")
def approve(approval_id: ApprovalId, as_json: AsJson = False) -> None:
    """Approve one queued payment: that exact request, at that price or less, once, before it expires."""
    _decide(approval_id, True, "", as_json)


@approvals_app.command("deny")
def deny(
    approval_id: ApprovalId,
    reason: Annotated[str, typer.Option(help="Why (shown to the requester)")] = "",
    as_json: AsJson = False,
) -> None:
    """Deny one queued payment. A denial is final for that request."""
    _decide(approval_id, False, reason, as_json)


def console(
    host: Annotated[str, typer.Option(help="Interface (default loopback only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free one)")] = 8403,
) -> None:
    """The operator's web console: budget, receipts, videos, jobs, approvals, kill switch, audit."""
    from .console import ConsoleServer

    settings, ledger = _open(False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach it and has the token can freeze or approve",
                   err=True)
    with ledger:
        try:
            server = ConsoleServer(ledger, settings, host=host, port=port).start()
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
