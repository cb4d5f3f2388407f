"""``imagine-agent``: quote, generate, wait, download; budget, receipts, reconcile; sandbox, devnet, wallet.

Heavy imports (httpx, pydantic, eth-account, langchain) happen inside commands, so ``--help`` is fast.
Every command runs under the one output contract of ``_output`` (its docstring: JSON, errors, exit codes).
The commands, by topic: ``video`` (quote, generate, status, wait, download, chat), ``books`` (budget,
receipts, reconcile), ``approvals``, ``servers`` (sandbox, devnet, console, mcp), ``wallet``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ._common import _approver as _approver
from ._output import _echo, _Group
from .approvals import approvals_app
from .books import budget, receipts, reconcile
from .servers import console, devnet, mcp, sandbox
from .video import chat, download, generate, quote, status, wait
from .wallet import wallet_app

__all__ = ["app", "main"]


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        _echo(f"imagine-agent {__version__}")
        raise typer.Exit(0)


app = typer.Typer(
    name="imagine-agent",
    cls=_Group,
    help="Buy AI videos from the Imagine API with x402 (USDC on Base), under a budget that cannot be overspent.\n\n"
    "With no --base-url / IMAGINE_BASE_URL, commands run against an embedded sandbox: no keys, no real money.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(wallet_app, name="wallet")
app.add_typer(approvals_app, name="approvals")
for _command in (
    console,
    quote,
    generate,
    status,
    wait,
    download,
    sandbox,
    devnet,
    budget,
    receipts,
    reconcile,
    chat,
    mcp,
):
    app.command()(_command)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Buy AI videos from the Imagine API with x402 (USDC on Base), under a budget that cannot be overspent."""


def main() -> None:
    # ``import httpx`` also loads httpx's own command line (click, rich's syntax highlighting, pygments) wherever
    # click is installed: 0.13 s of CPU in every run, for a command this process never calls (encode/httpx#3547).
    # Marked absent before anything imports httpx, it is skipped and httpx binds its fallback ``main``. Only here,
    # in the process the CLI owns: ``import imagine_agent`` in someone else's program leaves httpx as it is.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    app()
