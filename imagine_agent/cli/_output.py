"""The CLI's one output contract: the only code that prints results, JSON or errors.

The output contract lives in ONE place, this module (``_Group.main`` + ``_report``, and
``_emit`` / ``_echo`` / ``_err`` / ``_fail`` for what a command prints): every outcome of every command —
success, refusal, configuration error, usage error (``--duration abc --json``), crash — becomes exactly one
JSON object on stdout with ``--json`` (always carrying ``"sandbox": true|false``; errors also ``error``,
``message``, ``exitCode``, ``code``), or escaped rich text on stderr otherwise, and the exit code below. A
command follows it by:

- calling ``_begin(as_json, sandbox=...)`` first (what ``--json`` and the ``sandbox`` field say),
- printing success with ``_emit(obj)`` (adds ``sandbox``) or plain ``_echo`` (no markup is parsed),
  and anything through rich with ``_err(text)`` after ``_escape``-ing every value it did not write,
- raising on failure: any ``ImagineError`` (its exit code comes from ``errors.exit_code_for``), or
  ``typer.Exit(code)`` after printing its own outcome. Never print a traceback; never catch to hide.
- opening the service with ``_service(settings, ...)`` (it tells the handler whether a payment was
  sent in this run) and the ledger-only commands with ``_books(settings, sandbox=...)`` (no key, no server).

Exit codes: 0 done, 1 generation failed, 2 bad input, usage or configuration, 3 refused by policy or
budget (nothing signed), 4 a payment was sent and its outcome is unknown (or a network failure after it
was sent), 5 unknown task id, 6 server failure with no payment sent (safe to retry), 7 internal error,
130 interrupted (Ctrl-C or SIGTERM: the message says whether anything was paid, and which task to
``wait`` for). Every JSON error has a ``code``: an ``ImagineError``'s, or ``usage``, ``interrupted``,
``internal``. Off a terminal every error is one line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup


@dataclass
class _Run:
    """What the one output handler needs to know about the command running in this process."""

    as_json: bool = False
    sandbox: bool = True  # no IMAGINE_BASE_URL: the embedded sandbox; commands set it as soon as they know
    payment_sent: bool = False  # a signed header left this process in this run
    opened: bool = False  # the service opened: before that, nothing can have been paid
    embedded: bool = False  # the service runs the embedded sandbox: its jobs end with this process
    sent: list[Any] | None = None  # on failure: the payments this run sent, newest first (None: cannot tell)
    base_url_flag: str | None = None  # --base-url as given: a printed follow-up command must name it too


_RUN = _Run()
# Typer's usage errors: click's ClickException, which recent typer releases vendor as typer._click.
_USAGE_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)


_LEDGER_COMMANDS = ("budget", "receipts", "reconcile", "wallet")
# Commands that SIGTERM ends like Ctrl-C (exit 130, what was paid); the servers keep their own signal handling.
_INTERRUPTIBLE = ("quote", "generate", "status", "wait", "download", "chat")


def _sandbox_by_default(argv: list[str]) -> bool:
    """Before a command knows better: --sandbox / --real say it; otherwise the books follow the URL."""
    import os

    command = next((a for a in argv if not a.startswith("-")), "")
    if command in _LEDGER_COMMANDS and ("--sandbox" in argv or "--real" in argv):
        return "--sandbox" in argv
    return not os.environ.get("IMAGINE_BASE_URL", "").strip() and "--base-url" not in argv


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM in a command, carried past typer (which turns it into a silent exit 130) to ``_report``."""


class _Group(TyperGroup):
    """Runs every command under the one output contract (see the module docstring)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Interrupted() from exc

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        _RUN.as_json, _RUN.sandbox, _RUN.payment_sent = "--json" in argv, _sandbox_by_default(argv), False
        _RUN.opened, _RUN.embedded, _RUN.sent, _RUN.base_url_flag = False, False, None, None
        try:
            with _sigterm_interrupts(next((a for a in argv if not a.startswith("-")), "") in _INTERRUPTIBLE):
                code = super().main(
                    argv,
                    prog_name,
                    complete_var,
                    standalone_mode=False,
                    windows_expand_args=windows_expand_args,
                    **extra,
                )
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.Abort:
            code = _report(KeyboardInterrupt("aborted"), exit_code=130)
        except _USAGE_ERRORS as exc:  # bad option values, missing arguments, unknown options
            code = _report(exc, exit_code=2)
        except (KeyboardInterrupt, _Interrupted):
            code = _report(KeyboardInterrupt(), exit_code=130)
        except Exception as exc:  # the one place every outcome becomes output and a code
            code = _report(exc)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


@contextmanager
def _sigterm_interrupts(enabled: bool) -> Iterator[None]:
    """SIGTERM ends a command the way Ctrl-C does: through ``_report`` (what was paid, exit 130), not silently."""
    import signal
    import threading

    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# The ``code`` of failures that carry no ImagineError code (every --json error has one; docs/changes/i20cli.md).
_USAGE_CODE, _INTERRUPTED_CODE, _INTERNAL_CODE = "usage", "interrupted", "internal"


def _report(exc: BaseException, *, exit_code: int | None = None) -> int:
    """Turn a failure into one JSON object (``--json``) or an escaped line on stderr; return the exit code."""
    from ..errors import ImagineError, exit_code_for

    code = exit_code if exit_code is not None else exit_code_for(exc, payment_sent=_RUN.payment_sent)
    extra: dict[str, Any] = {}
    if isinstance(exc, _USAGE_ERRORS):
        name, message, error_code = "UsageError", str(exc.format_message()), _USAGE_CODE  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            message += f" (see `{ctx.command_path} --help`)"
    elif isinstance(exc, KeyboardInterrupt):
        name, error_code = "Interrupted", _INTERRUPTED_CODE
        message, extra = _interrupted()
    elif isinstance(exc, ImagineError):
        name, message, error_code = type(exc).__name__, str(exc), exc.code or "error"
    else:
        name, error_code = "InternalError", _INTERNAL_CODE
        message = (
            f"{type(exc).__name__}: {str(exc)[:300]} (a bug in imagine-agent; `imagine-agent receipts` "
            "shows whether a payment went out)"
        )
    at_terminal = sys.stderr.isatty()
    if isinstance(exc, _USAGE_ERRORS) and not _RUN.as_json and at_terminal:
        if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            from typer import rich_utils

            rich_utils.rich_format_error(exc)  # type: ignore[arg-type]  # typer's usage box; values are not markup
        return code
    if type(exc).__name__ == "NoArgsIsHelpError" and not _RUN.as_json:
        return code  # the help is printed already
    if _RUN.as_json:
        body: dict[str, Any] = {"error": name, "message": message, "exitCode": code, "code": error_code, **extra}
        for attribute, key in (("task_id", "taskId"), ("approval_id", "approvalId")):
            value = getattr(exc, attribute, None)
            if isinstance(value, str):
                body[key] = value
        _emit(body)
    else:
        _err(f"[bold red]{_escape(name)}:[/] {_escape(message if at_terminal else ' '.join(message.split()))}")
    return code


def _interrupted() -> tuple[str, dict[str, Any]]:
    """What an interrupted command must say: nothing paid, or the task and what was paid and how to follow it."""
    from ..money import format_usdc, usdc_fields

    sent = _RUN.sent if _RUN.opened else []
    if sent is None:
        return (
            "interrupted; whether a payment went out cannot be read here: `imagine-agent receipts` shows it",
            {"status": "interrupted", "paid": "unknown"},
        )
    if not sent:
        return "interrupted before any payment: nothing was paid", {"status": "interrupted", "paid": None}
    record = sent[0]
    paid = {
        **usdc_fields(record.amount),
        "asset": record.asset,
        "network": record.network,
        "payTo": record.pay_to,
        "payer": record.payer,
        "transaction": record.transaction,
    }
    extra: dict[str, Any] = {"status": "interrupted", "paid": paid, "paymentState": record.state.value}
    what = f"{format_usdc(record.amount)} on {record.network}" + (" (sandbox money)" if record.sandbox else "")
    more = f" ({len(sent)} payments in this run: `imagine-agent receipts` lists them)" if len(sent) > 1 else ""
    if record.task_id is None:
        return (
            f"interrupted after a payment of {what} was sent, before the server answered: it counts as spent "
            f"until `imagine-agent reconcile` settles it{more}",
            extra,
        )
    extra["taskId"] = record.task_id
    if _RUN.embedded:
        return (
            f"interrupted after paying {what} for task {record.task_id}; the embedded sandbox stopped with this "
            f"process, so that job ended with it (no real money moved){more}",
            extra,
        )
    follow = f"imagine-agent wait {record.task_id}"
    if _RUN.base_url_flag is not None:
        follow += f" --base-url {_RUN.base_url_flag}"
    extra["next"] = follow
    return (
        f"interrupted after paying {what} for task {record.task_id}; the job goes on at the server: "
        f"`{follow}` follows it{more}",
        extra,
    )


def _begin(as_json: bool, *, sandbox: bool | None = None) -> None:
    """Every command calls this first: whether it answers in JSON, and whether its money is sandbox money."""
    _RUN.as_json = _RUN.as_json or as_json
    if sandbox is not None:
        _RUN.sandbox = sandbox


def _emit(obj: dict[str, Any]) -> None:
    """The one JSON object of this run on stdout, with ``sandbox`` (unless the object already says it)."""
    sys.stdout.write(
        json.dumps({**obj, "sandbox": obj.get("sandbox", _RUN.sandbox)}, separators=(",", ":"), default=str) + "\n"
    )
    sys.stdout.flush()


def _err(text: str) -> None:
    """Rich text on stderr. ``text`` is markup: ``_escape`` every value in it that we did not write.
    Off a terminal (a log file, a pipe) a line is never wrapped: one message, one line."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=not sys.stderr.isatty()).print(text)


def _escape(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


def _echo(text: str = "", *, err: bool = False) -> None:
    """A plain line (no markup is parsed) on stdout, or on stderr with ``err``."""
    typer.echo(text, err=err)


def _emit_csv(rows: list[dict[str, Any]], fieldnames: list[str]) -> None:
    """Rows as CSV on stdout, with a header line."""
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)


def _fail(message: str, code: str, exit_code: int, as_json: bool, sandbox: bool = False) -> typer.Exit:
    """An approvals/console failure: one JSON object (``--json``) or one ``error:`` line; raise what it returns."""
    if as_json:
        _emit({"error": "ApprovalError", "code": code, "message": message, "exitCode": exit_code, "sandbox": sandbox})
    else:
        _echo(f"error: {message}", err=True)
    return typer.Exit(exit_code)
