"""``imagine-agent``: quote, generate, wait, download; budget, receipts, reconcile; sandbox, devnet, wallet.

Heavy imports (httpx, pydantic, eth-account, langchain) happen inside commands, so ``--help`` is fast.

The output contract lives in ONE place, ``_Group.main`` + ``_report``: every outcome of every command —
success, refusal, configuration error, usage error (``--duration abc --json``), crash — becomes exactly one
JSON object on stdout with ``--json`` (always carrying ``"sandbox": true|false``; errors also ``error``,
``message``, ``exitCode``, ``code``), or escaped rich text on stderr otherwise, and the exit code below. A
command follows it by:

- calling ``_begin(as_json, sandbox=...)`` first (what ``--json`` and the ``sandbox`` field say),
- printing success with ``_emit(obj)`` (adds ``sandbox``) or plain ``typer.echo`` (no markup is parsed),
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
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from .books import Books
    from .config import Settings
    from .models import TaskStatus
    from .service import ImagineService


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

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        _RUN.as_json, _RUN.sandbox, _RUN.payment_sent = "--json" in argv, _sandbox_by_default(argv), False
        _RUN.opened, _RUN.embedded, _RUN.sent, _RUN.base_url_flag = False, False, None, None
        try:
            with _sigterm_interrupts(next((a for a in argv if not a.startswith("-")), "") in _INTERRUPTIBLE):
                code = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                    windows_expand_args=windows_expand_args, **extra)
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
    from .errors import ImagineError, exit_code_for

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
        message = (f"{type(exc).__name__}: {str(exc)[:300]} (a bug in imagine-agent; `imagine-agent receipts` "
                   "shows whether a payment went out)")
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
    from .money import format_usdc, usdc_fields

    sent = _RUN.sent if _RUN.opened else []
    if sent is None:
        return ("interrupted; whether a payment went out cannot be read here: `imagine-agent receipts` shows it",
                {"status": "interrupted", "paid": "unknown"})
    if not sent:
        return "interrupted before any payment: nothing was paid", {"status": "interrupted", "paid": None}
    record = sent[0]
    paid = {**usdc_fields(record.amount), "asset": record.asset, "network": record.network, "payTo": record.pay_to,
            "payer": record.payer, "transaction": record.transaction}
    extra: dict[str, Any] = {"status": "interrupted", "paid": paid, "paymentState": record.state.value}
    what = f"{format_usdc(record.amount)} on {record.network}" + (" (sandbox money)" if record.sandbox else "")
    more = f" ({len(sent)} payments in this run: `imagine-agent receipts` lists them)" if len(sent) > 1 else ""
    if record.task_id is None:
        return (f"interrupted after a payment of {what} was sent, before the server answered: it counts as spent "
                f"until `imagine-agent reconcile` settles it{more}", extra)
    extra["taskId"] = record.task_id
    if _RUN.embedded:
        return (f"interrupted after paying {what} for task {record.task_id}; the embedded sandbox stopped with this "
                f"process, so that job ended with it (no real money moved){more}", extra)
    follow = f"imagine-agent wait {record.task_id}"
    if _RUN.base_url_flag is not None:
        follow += f" --base-url {_RUN.base_url_flag}"
    extra["next"] = follow
    return (f"interrupted after paying {what} for task {record.task_id}; the job goes on at the server: "
            f"`{follow}` follows it{more}", extra)


def _begin(as_json: bool, *, sandbox: bool | None = None) -> None:
    """Every command calls this first: whether it answers in JSON, and whether its money is sandbox money."""
    _RUN.as_json = _RUN.as_json or as_json
    if sandbox is not None:
        _RUN.sandbox = sandbox


def _emit(obj: dict[str, Any]) -> None:
    """The one JSON object of this run on stdout, with ``sandbox`` (unless the object already says it)."""
    sys.stdout.write(json.dumps({**obj, "sandbox": obj.get("sandbox", _RUN.sandbox)}, separators=(",", ":"),
                                default=str) + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    """Rich text on stderr. ``text`` is markup: ``_escape`` every value in it that we did not write.
    Off a terminal (a log file, a pipe) a line is never wrapped: one message, one line."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=not sys.stderr.isatty()).print(text)


def _escape(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"imagine-agent {__version__}")
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
wallet_app = typer.Typer(help="Create a wallet or show its address.", no_args_is_help=True)
app.add_typer(wallet_app, name="wallet")
from .cli_approvals import approvals_app, console  # noqa: E402  (light: typer only)

app.add_typer(approvals_app, name="approvals")
app.command()(console)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit",
                                          callback=_version, is_eager=True)] = False,
) -> None:
    """Buy AI videos from the Imagine API with x402 (USDC on Base), under a budget that cannot be overspent."""


BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="Imagine API URL (env IMAGINE_BASE_URL); unset = sandbox")]
MaxPerCall = Annotated[
    Optional[Decimal],
    typer.Option("--max-per-call", help="Per-call cap in USDC (env IMAGINE_MAX_PER_CALL, default 5)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Approve payments over the approval threshold")]
TaskId = Annotated[str, typer.Argument(help="The task id a paid generate printed")]
Sandbox = Annotated[bool, typer.Option("--sandbox", help="The sandbox books (demo money), whatever the API")]
Real = Annotated[bool, typer.Option("--real", help="The real books (real money), whatever the API")]
# The books follow the API (rule 8): no URL or a loopback sandbox -> sandbox books; any other API -> real books.
LedgerBaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="The API whose books to show "
                                                      "(env IMAGINE_BASE_URL); unset = the embedded sandbox's")]
Model = Annotated[
    Optional[str],
    typer.Option("--model", help="Video model, any the server lists (see `quote`); default: the server's default"),
]


def main() -> None:
    app()


# -------------------------------------------------------------------------------------------- plumbing


def _settings(base_url: str | None = None, max_per_call: Decimal | None = None, *, as_json: bool = False) -> Settings:
    """The operator's settings; any mistake is a ConfigurationError (exit 2) naming what to fix."""
    from .config import load_settings

    _begin(as_json)
    overrides: dict[str, Any] = {}
    if base_url is not None:
        overrides["base_url"] = base_url
    if max_per_call is not None:
        overrides["max_per_call"] = max_per_call
    settings = load_settings(**overrides)
    _RUN.sandbox = settings.base_url is None
    return settings


class _CliApprover:
    """The wallet's approver at a terminal: ``--yes`` approves prices; else the person confirms (recorded as
    ``cli --yes`` or ``cli``); with no terminal (or --json) the answer is no."""

    def __init__(self, yes: bool) -> None:
        self.yes = yes
        self.surface = "cli --yes" if yes else "cli"

    def __call__(self, request: Any) -> bool:
        if self.yes:
            return True
        if _RUN.as_json or not sys.stdin.isatty():
            return False
        return bool(typer.confirm(f"Approve: {request}?", default=False, err=True))


def _approver(yes: bool) -> Callable[[Any], bool]:
    return _CliApprover(yes)


def _at_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm_coin(payer: str, as_json: bool) -> None:
    """Under IMAGINE_AUTO_CLANK=ask a person confirms each coin at the terminal; --auto-clank alone (or --yes,
    which approves prices) never deploys one."""
    from .errors import ApprovalDeniedError

    if as_json or not _at_terminal():
        raise ApprovalDeniedError(
            "the operator's autoClank policy is 'ask': a coin needs a person's yes at a terminal, and there is none "
            "(--json or no terminal). Nothing was paid. Run it in a terminal, drop --auto-clank, or set "
            "IMAGINE_AUTO_CLANK=agent."
        )
    if not typer.confirm(f"Deploy a Clanker coin for this video? The paying wallet {payer} becomes its creator.",
                         default=False, err=True):
        raise ApprovalDeniedError("the coin was not approved, so nothing was paid. Drop --auto-clank to make the "
                                  "video without one.")
def _password() -> str:
    return str(typer.prompt("Keystore password", hide_input=True, err=True))


def _password_prompt() -> Callable[[], str] | None:
    """Ask for the keystore password only where a person can answer (else a clear exit-2 error, not an abort)."""
    return _password if _at_terminal() else None


@contextmanager
def _service(settings: Settings, *, yes: bool = False, pays: bool = True,
             quiet: bool = False) -> Iterator[ImagineService]:
    """Open the service (``pays=False``: no key or password needed) and close it; errors go to ``_Group``."""
    from .service import SANDBOX_NOTICE, ImagineService, ReadOnlySigner, public_address

    signer = None
    if not pays and settings.base_url is not None:
        signer = ReadOnlySigner(public_address(settings))
    try:
        service = ImagineService.create(settings, approver=_approver(yes), signer=signer,
                                        password_prompt=_password_prompt())
    except OSError as exc:  # the data dir cannot hold the ledger: a configuration mistake, not a crash
        from .errors import ConfigurationError

        raise ConfigurationError(f"cannot open the ledger in {settings.data_dir} (IMAGINE_DATA_DIR / "
                                 f"IMAGINE_LEDGER_URL): {exc}") from None
    try:
        _RUN.sandbox, _RUN.opened, _RUN.embedded = service.is_sandbox, True, service.is_embedded_sandbox
        if service.is_embedded_sandbox and not quiet and not _RUN.as_json:
            _err(f"[bold yellow]{SANDBOX_NOTICE}[/]")
        elif service.is_sandbox and not quiet and not _RUN.as_json:
            _err("[bold yellow]SANDBOX: this server identifies itself as the sandbox; its payments are kept in "
                 "the sandbox ledger, apart from real money.[/]")
        yield service
    except BaseException:
        try:
            _RUN.sent = service.sent_this_run()
        except Exception:  # cannot tell: the cautious answer (network errors are then exit 4)
            _RUN.sent = None
        _RUN.payment_sent = _RUN.payment_sent or _RUN.sent is None or bool(_RUN.sent)
        raise
    finally:
        service.close()


@contextmanager
def _books(settings: Settings, *, sandbox: bool | None = None, address: str | None = None) -> Iterator[Books]:
    """The books the API points at (or ``sandbox`` forces), with the other ones, without key or password."""
    from .books import Books

    with Books(settings, sandbox=sandbox, address=address) as books:
        _RUN.sandbox = books.sandbox
        yield books


def _which(sandbox: bool, real: bool) -> bool | None:
    if sandbox and real:
        raise typer.BadParameter("--sandbox and --real contradict each other: give one")
    return True if sandbox else False if real else None


class _Progress:
    """A progress bar that appears at the first status update, i.e. only after the input was validated."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, status: TaskStatus) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                 console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("queued", total=100)
        done = 100 if status.status == "completed" else (status.progress or 0)
        self._bar.update(self._task, completed=done, description=_escape(status.status))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def _progress(enabled: bool) -> Iterator[_Progress]:
    bar = _Progress(enabled)
    try:
        yield bar
    finally:
        bar.close()


def _summary(outcome: Any, service: ImagineService) -> None:
    from .money import format_usdc

    rows: list[tuple[str, str]] = [("task", outcome.task_id),
                                   ("status", outcome.status.status if outcome.status else "submitted")]
    if outcome.attached:
        rows.append(("payment", "none: attached to the job already paid for this exact request"))
    if outcome.payment and outcome.payment.paid_by == "x402":
        p = outcome.payment
        rows += [("paid", f"{format_usdc(p.amount)} on {p.network} to {p.pay_to}"), ("payer", p.payer),
                 ("transaction", p.transaction or "(the server sent no receipt)")]
    if outcome.payment and outcome.payment.paid_by == "credits":
        rows.append(("paid", "from provider credits: 0 USDC, no budget used"))
    if outcome.status and outcome.status.video_url:
        rows.append(("video url", outcome.status.video_url))
    from .results import coin_line, delivery_facts

    facts = delivery_facts(outcome.status, outcome.payment.payer if outcome.payment else service.address)
    if facts.get("mediaUrl"):
        rows.append(("media page", facts["mediaUrl"]))
    if (coin := coin_line(facts)) is not None:
        rows.append(("coin", coin))
    if outcome.downloads:
        rows.append(("video file", str(outcome.downloads.video)))
        if outcome.downloads.preview:
            rows.append(("preview", str(outcome.downloads.preview)))
    rows.append(("budget", _budget_line(service)))
    if service.is_sandbox:
        rows.append(("note", "sandbox: no real money moved"))
    for name, value in rows:
        typer.echo(f"{name:>12}  {value}")


def _budget_line(service: ImagineService) -> str:
    return service.budget().vocabulary()


# -------------------------------------------------------------------------------------------- commands

Duration = Annotated[Optional[float], typer.Option(help="Seconds of video (default 8)")]
Image = Annotated[Optional[str], typer.Option(help="Start image: http(s) URL, data URL or local file")]
Remix = Annotated[Optional[str], typer.Option(help="Sora video id to remix")]
AutoEnhance = Annotated[bool, typer.Option("--auto-enhance", help="Let the server enhance the prompt")]
AutoClank = Annotated[bool, typer.Option("--auto-clank", help="Coin the video (the paying wallet becomes its creator)")]
Prompt = Annotated[str, typer.Argument(help="What the video should show")]


@app.command()
def quote(
    prompt: Prompt,
    duration: Duration = None,
    image: Image = None,
    auto_clank: AutoClank = False,
    auto_enhance: AutoEnhance = False,
    remix: Remix = None,
    model: Model = None,
    base_url: BaseUrl = None,
    max_per_call: MaxPerCall = None,
    as_json: AsJson = False,
) -> None:
    """Ask the price of a video. Signs nothing, pays nothing, needs no key. Exit 3 if policy or budget refuse it."""
    _begin(as_json)
    with _service(_settings(base_url, max_per_call), pays=False, quiet=as_json) as service:
        result = service.quote(prompt, duration=duration, image=image, auto_clank=auto_clank,
                               auto_enhance=auto_enhance, remix=remix, video_model=model, all_models=True)
        if as_json:
            _emit({**result.to_json(), **({} if result.allowed else {"exitCode": 3})})
        else:
            from .money import format_usdc

            r = result.quote.requirement
            chosen = model or result.quote.default_model
            typer.echo(f"price: {format_usdc(r.amount)} on {r.network} to {r.pay_to}"
                       + (f" ({chosen})" if chosen else "") + f" · x402 v{r.x402_version}")
            for name, amount in result.model_prices.items():
                default = "  (server default)" if name == result.quote.default_model else ""
                typer.echo(f"  model {name:<20} {format_usdc(amount)}{default}")
            typer.echo(f"largest next payment: {format_usdc(result.remaining)}{' (sandbox)' if result.sandbox else ''}")
            typer.echo("within policy: yes" if result.allowed else f"within policy: NO ({result.refusal})")
        if not result.allowed:
            raise typer.Exit(3)


@app.command()
def generate(
    prompt: Prompt,
    duration: Duration = None,
    image: Image = None,
    auto_clank: AutoClank = False,
    auto_enhance: AutoEnhance = False,
    remix: Remix = None,
    model: Model = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return at payment with the task id")] = False,
    output: Annotated[Path, typer.Option("--output", "-o", help="Download directory")] = Path("imagine-output"),
    new: Annotated[bool, typer.Option("--new", help="Pay again even if this exact request is pending")] = False,
    yes: Yes = False,
    base_url: BaseUrl = None,
    max_per_call: MaxPerCall = None,
    as_json: AsJson = False,
) -> None:
    """Pay for a video, wait for it with a progress bar, and download it."""
    _begin(as_json)
    _RUN.base_url_flag = base_url
    with _service(_settings(base_url, max_per_call), yes=yes) as service:
        if service.decide_coin(auto_clank, asker="person").needs_person:
            from .errors import ApprovalDeniedError

            try:
                _confirm_coin(service.address, as_json)
            except ApprovalDeniedError:
                service.audit_decision(False, f"a coin for the video {prompt[:80]!r}", "cli")
                raise
            service.audit_decision(True, f"a coin for the video {prompt[:80]!r}", "cli")
        with _progress(not as_json and not no_wait) as on_progress:
            outcome = service.generate(
                prompt, duration=duration, image=image, auto_clank=auto_clank, auto_enhance=auto_enhance,
                remix=remix, video_model=model, wait=not no_wait, output_dir=output, on_progress=on_progress,
                attach=not new,
            )
        if as_json:
            _emit(outcome.to_json())
        else:
            _summary(outcome, service)


def _known_status(service: ImagineService, task_id: str) -> TaskStatus:
    """The task's status; an unknown task is ``TaskNotFoundError`` (exit 5), never a status to print."""
    from .errors import TaskNotFoundError

    result = service.status(task_id)
    if result.status == "not_found":
        raise TaskNotFoundError(f"the server does not know task {task_id!r}: check the id (`imagine-agent "
                                "receipts` lists the tasks paid for)", status_code=404)
    return result


def _status_line(task_id: str, result: TaskStatus) -> str:
    progress = f" {result.progress}%" if result.progress is not None else ""
    return f"{task_id}: {result.status}{progress}"


@app.command()
def status(task_id: TaskId, base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """Show a task's status once (needs no key). Exit 5 if the server does not know the task."""
    _begin(as_json)
    with _service(_settings(base_url), pays=False, quiet=as_json) as service:
        result = _known_status(service, task_id)
        if as_json:
            _emit(result.to_wire())
        else:
            typer.echo(_status_line(task_id, result))
            if result.video_url:
                typer.echo(f"video: {result.video_url}")
            if result.media_url:
                typer.echo(f"media page: {result.media_url}")


@app.command()
def wait(
    task_id: TaskId,
    timeout: Annotated[Optional[float], typer.Option(min=0, help="Give up after N seconds")] = None,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Wait for a task (by id, from any earlier run) to finish (needs no key)."""
    _begin(as_json)
    with _service(_settings(base_url), pays=False, quiet=as_json) as service:
        with _progress(not as_json) as on_progress:
            result = service.wait(task_id, on_progress=on_progress, timeout=timeout)
        if as_json:
            _emit(result.to_wire())
        else:
            typer.echo(f"{task_id}: {result.status}  video: {result.video_url}")


@app.command()
def download(
    task_id: TaskId,
    output: Annotated[Path, typer.Option("--output", "-o", help="Download directory")] = Path("imagine-output"),
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Download a completed task's video and preview image (needs no key)."""
    _begin(as_json)
    from .service import check_output_dir

    with _service(_settings(base_url), pays=False, quiet=as_json) as service:
        check_output_dir(output)
        found = _known_status(service, task_id)
        files = service.download(task_id, output, status=found)
        if as_json:
            _emit({"taskId": task_id, "videoPath": str(files.video),
                   "previewPath": str(files.preview) if files.preview else None})
        else:
            typer.echo(f"video: {files.video}")
            if files.preview:
                typer.echo(f"preview: {files.preview}")


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value[:40]!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise typer.BadParameter(f"{value[:40]!r} must be a positive number")
    return number


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 8402,
    speed: Annotated[float, typer.Option(parser=_positive, help="Time scale: 60 = a 2-minute job takes 2 s")] = 1.0,
    faults: Annotated[Optional[Path], typer.Option(help="JSON/TOML file of scripted faults")] = None,
    rpc_url: Annotated[Optional[str], typer.Option(
        "--rpc-url", help="Settle on this node (e.g. `imagine-agent devnet`'s) instead of simulated balances")] = None,
    relayer_key: Annotated[Optional[str], typer.Option(
        "--relayer-key", envvar="IMAGINE_SANDBOX_RELAYER_KEY", show_default=False,
        help="Key that pays the gas of settlements with --rpc-url (env IMAGINE_SANDBOX_RELAYER_KEY)")] = None,
    network: Annotated[str, typer.Option(help="Network the 402 asks for: base or base-sepolia")] = "base",
    x402: Annotated[str, typer.Option("--x402", help="Protocol version the paywall speaks: v1, v2 or both")] = "v1",
    rich_results: Annotated[bool, typer.Option("--rich-results",
                                               help="Results in today's shape: media page, coin, txHash")] = False,
) -> None:
    """Run the local Imagine API + x402 facilitator (test double; no real money, or a local chain's USDC)."""
    import socket

    from .errors import ConfigurationError
    from .sandbox import SandboxConfig, load_faults, run

    _begin(False, sandbox=True)
    try:
        if x402 not in ("v1", "v2", "both"):
            raise ValueError(f"--x402 must be v1, v2 or both, not {x402!r}")
        config = SandboxConfig(speed=speed, faults=load_faults(faults) if faults else [], network=network,
                               rpc_url=rpc_url, relayer_key=relayer_key, x402=x402, rich_results=rich_results)
    except (ValueError, OSError) as exc:  # a broken fault file, an unknown network
        raise ConfigurationError(f"invalid sandbox settings: {exc}") from None
    try:  # a clear error now, rather than uvicorn's log line and exit 1 later
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port "
                                 "or --host") from None
    where = f"http://{_escape(host)}:{port}"
    if rpc_url is not None:
        from .chain import UsdcChain, rpc_origin
        from .errors import ImagineError

        try:
            with UsdcChain(rpc_url) as chain:
                chain.check(network)
        except ImagineError as exc:
            raise ConfigurationError(f"cannot settle on {rpc_origin(rpc_url)}: {exc}") from None
        _err(f"[bold yellow]Sandbox on {where}, settling on the chain at {_escape(rpc_origin(rpc_url))}[/] "
             f"(USDC moves there). Use: IMAGINE_BASE_URL={where} IMAGINE_RPC_URL=<that RPC URL> "
             "IMAGINE_ALLOW_PRIVATE_IMAGE_URLS=1")
    else:
        _err(f"[bold yellow]Sandbox on {where} — no real money moves.[/] "
             f"Use: IMAGINE_BASE_URL={where} IMAGINE_ALLOW_PRIVATE_IMAGE_URLS=1")
    run(host, port, config)


@app.command()
def devnet(
    network: Annotated[str, typer.Option(help="Chain to imitate: base (8453) or base-sepolia (84532)")] = "base",
    payers: Annotated[int, typer.Option(help="Fresh throwaway keys to create and fund")] = 1,
    fund: Annotated[Optional[list[str]], typer.Option(help="Also fund this address (repeatable)")] = None,
    amount: Annotated[Decimal, typer.Option(help="USDC to mint to each funded address")] = Decimal("100"),
    host: Annotated[str, typer.Option(help="Interface anvil listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port)")] = 8545,
) -> None:
    """Run a local chain (anvil) with Circle's USDC at Base's address; print one JSON object; run until stopped."""
    import signal

    _begin(False, sandbox=True)  # a throwaway local chain: not real money

    from .devnet import Devnet
    from .errors import ImagineError
    from .money import parse_usdc

    try:
        net = Devnet(network, payers=payers, fund=tuple(fund or ()), amount=parse_usdc(amount), host=host, port=port,
                     say=lambda text: _err(f"[bold]{_escape(text)}[/]"))
    except (ImagineError, ValueError) as exc:
        _err(f"[bold red]invalid devnet settings:[/] {_escape(str(exc))}")
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop anvil on SIGTERM too (the finally below)
    try:
        net.start()
    except ImagineError as exc:
        _err(f"[bold red]the devnet did not start:[/] {_escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        _emit(net.info())
        _err(f"[bold yellow]Devnet on {net.rpc_url} (chain {net.network.chain_id}): Circle's USDC at "
             f"{net.network.usdc}; throwaway keys, not real money.[/] Ctrl-C stops it.")
        net.wait()
    except KeyboardInterrupt:
        pass
    finally:
        net.stop()


@app.command()
def budget(
    freeze: Annotated[bool, typer.Option("--freeze", help="Kill switch: stop all payments now, sandbox ones too")] = False,
    unfreeze: Annotated[bool, typer.Option("--unfreeze", help="Allow payments again")] = False,
    sandbox: Sandbox = False,
    real: Real = False,
    address: Annotated[Optional[str], typer.Option(help="Wallet address to show (default: from the key or ledger)")] = None,
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
        from .money import format_usdc

        t, c = report.totals, report.caps

        def fmt(v: int | None) -> str:
            return "unlimited" if v is None else format_usdc(v)

        which = "sandbox books (demo money)" if report.sandbox else "real books (real money)"
        typer.echo(f"wallet {report.address} · {which}{'  FROZEN' if t.frozen else ''}")
        typer.echo(report.vocabulary())
        typer.echo(f"spent {format_usdc(t.spent)} · reserved {format_usdc(t.reserved)} · unknown {format_usdc(t.unknown)}")
        typer.echo(f"caps: per call {fmt(c.per_call)} · daily {fmt(c.daily)} · total {fmt(c.total)}")
        if report.other is not None:
            typer.echo(f"also, apart: {report.other.line()}")


_RECEIPT_KEYS = ["id", "state", "amount", "amountUsdc", "asset", "network", "payTo", "payer", "nonce", "taskId",
                 "transaction", "reason", "origin", "sandbox", "createdAt"]


@app.command()
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
            _emit({"payments": rows, "books": "sandbox" if sandbox else "real",
                   "otherBooks": {"books": "real" if sandbox else "sandbox", "payments": others}})
        elif csv_out:
            import csv

            writer = csv.DictWriter(sys.stdout, fieldnames=_RECEIPT_KEYS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            from .books import BOOK_LABELS
            from .money import format_usdc

            for label, shown in ((BOOK_LABELS[sandbox], rows), (BOOK_LABELS[not sandbox], others)):
                if shown is others and not others:
                    break
                typer.echo(f"{label}: {len(shown)} payment(s)" + ("" if shown is rows else ", apart"))
                for r in shown:
                    kind = "sandbox" if r["sandbox"] else "real"
                    typer.echo(f"  {r['createdAt']}  {r['state']:<9} {format_usdc(int(r['amount'])):>17}  {kind:<7} "
                               f"task {r['taskId'] or '-'}  tx {r['transaction'] or '-'}  {r['origin'] or ''}".rstrip())
            if not rows:
                typer.echo("no sandbox payments yet" if sandbox else "no payments yet")


def _receipt_row(record: Any) -> dict[str, Any]:
    from .service.results import receipt_json

    return receipt_json(record)


@app.command()
def reconcile(sandbox: Sandbox = False, real: Real = False, base_url: LedgerBaseUrl = None,
              as_json: AsJson = False) -> None:
    """Settle what can be proven: release expired rejected payments, flag interrupted ones. No key needed."""
    _begin(as_json, sandbox=sandbox or None)
    with _books(_settings(base_url, as_json=as_json), sandbox=_which(sandbox, real)) as books:
        changed = books.reconcile()
        if as_json:
            _emit({"changed": [_receipt_row(r) for r in changed]})
        else:
            typer.echo(f"{len(changed)} payment(s) updated")
            for r in changed:
                typer.echo(f"  {r.id}: {r.state.value} ({r.reason})")


@wallet_app.command("new")
def wallet_new(
    keystore: Annotated[Optional[Path], typer.Option(help="Keystore file (default: DATA_DIR/keystore.json)")] = None,
    print_key: Annotated[bool, typer.Option("--print-key", help="Print the raw key instead (shown once)")] = False,
    as_json: AsJson = False,
) -> None:
    """Create a paying key in an encrypted keystore (password from IMAGINE_KEYSTORE_PASSWORD or a prompt)."""
    from .service.build import create_keystore
    from .x402 import PrivateKeySigner

    _begin(as_json, sandbox=False)
    if print_key:
        signer = PrivateKeySigner.generate()
        if as_json:
            _emit({"address": signer.address, "privateKey": signer.export_private_key()})
        else:
            typer.echo(f"address: {signer.address}")
            typer.echo(f"export IMAGINE_PRIVATE_KEY={signer.export_private_key()}  # shown once, store it safely")
        return
    settings = _settings()
    _RUN.sandbox = False
    prompt = None if as_json or not sys.stdin.isatty() else (
        lambda: str(typer.prompt("Keystore password", hide_input=True, confirmation_prompt=True, err=True)))
    address, path = create_keystore(settings, keystore, prompt)
    default = path == settings.data_dir / "keystore.json"
    hint = "found there without IMAGINE_KEYSTORE" if default else f"export IMAGINE_KEYSTORE={path}"
    if as_json:
        _emit({"address": address, "keystore": str(path)})
    else:
        typer.echo(f"address: {address}")
        typer.echo(f"keystore: {path}  ({hint})")


@wallet_app.command("address")
def wallet_address(as_json: AsJson = False) -> None:
    """Show the paying wallet's address (never the key; no password needed)."""
    from .errors import ConfigurationError
    from .service import public_address

    _begin(as_json, sandbox=False)
    address = public_address(_settings())
    _RUN.sandbox = False
    if address is None:
        raise ConfigurationError("no paying wallet: set IMAGINE_PRIVATE_KEY or IMAGINE_KEYSTORE, or create one "
                                 "with `imagine-agent wallet new`")
    if as_json:
        _emit({"address": address})
    else:
        typer.echo(address)


class _ClankPolicy(StrEnum):
    never = "never"
    ask = "ask"
    agent = "agent"
    always = "always"


class _Transport(StrEnum):
    stdio = "stdio"
    streamable_http = "streamable-http"


@app.command()
def chat(
    message: Annotated[Optional[str], typer.Argument(help="One message; omit for an interactive chat")] = None,
    model: Annotated[Optional[str], typer.Option(help="Chat model (env IMAGINE_MODEL); default: offline planner")] = None,
    auto_clank: Annotated[Optional[_ClankPolicy], typer.Option("--auto-clank", help="Coin policy")] = None,
    yes: Yes = False,
    base_url: BaseUrl = None,
    max_per_call: MaxPerCall = None,
    as_json: AsJson = False,
) -> None:
    """Talk to the video agent: it enhances the prompt, quotes, pays within budget, waits and narrates.
    Exit 3 when a refusal (policy, budget, a declined approval) stopped the purchase of a one-message chat."""
    _begin(as_json)
    _RUN.base_url_flag = base_url
    if not as_json:  # the first feedback, before settings, the service and the agent (LangChain) are loaded
        _err(_chat_first_line(message, base_url))
    settings = _settings(base_url, max_per_call)
    overrides: dict[str, Any] = {}
    if model is not None:
        overrides["model"] = model
    if auto_clank is not None:
        overrides["auto_clank"] = auto_clank.value
    if overrides:
        settings = settings.model_copy(update=overrides)
    with _service(settings, yes=yes) as service:
        from .chat import run_chat

        code = run_chat(service, message, yes=yes, as_json=as_json)
    if code:
        raise typer.Exit(code)


def _chat_first_line(message: str | None, base_url: str | None) -> str:
    """What is about to happen and where the money goes, from the flag, environment and TOML file only (cheap:
    no settings, no service, no agent yet); the settings decide, and the service's banner follows."""
    from .redact import redact_url

    url = (base_url or os.environ.get("IMAGINE_BASE_URL", "")).strip()
    if not url and base_url is None:
        try:
            import tomllib

            config = Path(os.environ.get("IMAGINE_CONFIG") or "imagine.toml")
            found = tomllib.loads(config.read_text()).get("base_url") if config.is_file() else None
            url = found.strip() if isinstance(found, str) else ""
        except (OSError, ValueError):  # the settings will say what is wrong with the file
            url = ""
    where = ("[bold yellow]embedded sandbox: no real money moves[/]" if not url
             else f"paying the API at {_escape(redact_url(url))}")
    if message is None:
        return (f"[bold]Chat with the video agent[/] ({where}). Describe a video; 'exit' or Ctrl-D to quit. "
                "Starting the agent…")
    return (f"[bold]Chat with the video agent[/] ({where}). It reads your message and, for a video, quotes it, pays "
            "within the operator's caps, waits for it and narrates. Starting the agent…")


@app.command()
def mcp(
    transport: Annotated[_Transport, typer.Option(help="How MCP clients connect")] = _Transport.stdio,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for streamable-http")] = 8765,
    base_url: BaseUrl = None,
    token: Annotated[Optional[str], typer.Option(
        help="Bearer token streamable-http clients must send (else IMAGINE_MCP_TOKEN, else one is generated "
        "and printed)")] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Serve streamable-http without a token: any local process could spend the budget")] = False,
) -> None:
    """Serve quote/generate/status/budget over the Model Context Protocol (Claude Desktop, Cursor, ElizaOS)."""
    import importlib.util

    from .errors import ConfigurationError

    _begin(False)
    if importlib.util.find_spec("mcp") is None:
        raise ConfigurationError("`imagine-agent mcp` needs the mcp extra: pip install 'imagine-agent[mcp]'")
    settings = _settings(base_url)
    from .mcp_server import serve

    serve(settings, transport=transport.value, port=port, token=token, no_auth=no_auth)


if __name__ == "__main__":
    main()
