"""What the commands share: settings, the service and the books opened under the output contract, the approver
at a terminal, the progress bar, the summary of a purchase, and the option types."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ._output import _RUN, _begin, _echo, _err, _escape, _fail

if TYPE_CHECKING:
    from ..books import Books
    from ..config import Settings
    from ..models import TaskStatus
    from ..service import ImagineService


BaseUrl = Annotated[
    Optional[str], typer.Option("--base-url", help="Imagine API URL (env IMAGINE_BASE_URL); unset = sandbox")
]
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
LedgerBaseUrl = Annotated[
    Optional[str],
    typer.Option(
        "--base-url", help="The API whose books to show (env IMAGINE_BASE_URL); unset = the embedded sandbox's"
    ),
]
# approvals and console: the books of the API come first, the other books beside them.
BooksBaseUrl = Annotated[
    Optional[str],
    typer.Option(
        "--base-url", help="The API whose books come first (env IMAGINE_BASE_URL); unset = the embedded sandbox's"
    ),
]
Model = Annotated[
    Optional[str],
    typer.Option("--model", help="Video model, any the server lists (see `quote`); default: the server's default"),
]


def _settings(base_url: str | None = None, max_per_call: Decimal | None = None, *, as_json: bool = False) -> Settings:
    """The operator's settings; any mistake is a ConfigurationError (exit 2) naming what to fix."""
    from ..config import load_settings

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
    from ..errors import ApprovalDeniedError

    if as_json or not _at_terminal():
        raise ApprovalDeniedError(
            "the operator's autoClank policy is 'ask': a coin needs a person's yes at a terminal, and there is none "
            "(--json or no terminal). Nothing was paid. Run it in a terminal, drop --auto-clank, or set "
            "IMAGINE_AUTO_CLANK=agent."
        )
    if not typer.confirm(
        f"Deploy a Clanker coin for this video? The paying wallet {payer} becomes its creator.", default=False, err=True
    ):
        raise ApprovalDeniedError(
            "the coin was not approved, so nothing was paid. Drop --auto-clank to make the video without one."
        )


def _password() -> str:
    return str(typer.prompt("Keystore password", hide_input=True, err=True))


def _password_prompt() -> Callable[[], str] | None:
    """Ask for the keystore password only where a person can answer (else a clear exit-2 error, not an abort)."""
    return _password if _at_terminal() else None


@contextmanager
def _service(
    settings: Settings, *, yes: bool = False, pays: bool = True, quiet: bool = False
) -> Iterator[ImagineService]:
    """Open the service (``pays=False``: no key or password needed) and close it; errors go to ``_Group``."""
    from ..service import SANDBOX_NOTICE, ImagineService, ReadOnlySigner, public_address

    signer = None
    if not pays and settings.base_url is not None:
        signer = ReadOnlySigner(public_address(settings))
    try:
        service = ImagineService.create(
            settings, approver=_approver(yes), signer=signer, password_prompt=_password_prompt()
        )
    except OSError as exc:  # the data dir cannot hold the ledger: a configuration mistake, not a crash
        from ..errors import ConfigurationError

        raise ConfigurationError(
            f"cannot open the ledger in {settings.data_dir} (IMAGINE_DATA_DIR / IMAGINE_LEDGER_URL): {exc}"
        ) from None
    try:
        _RUN.sandbox, _RUN.opened, _RUN.embedded = service.is_sandbox, True, service.is_embedded_sandbox
        if service.is_embedded_sandbox and not quiet and not _RUN.as_json:
            _err(f"[bold yellow]{SANDBOX_NOTICE}[/]")
        elif service.is_sandbox and not quiet and not _RUN.as_json:
            _err(
                "[bold yellow]SANDBOX: this server identifies itself as the sandbox; its payments are kept in "
                "the sandbox ledger, apart from real money.[/]"
            )
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
    from ..books import Books

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

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
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
    from ..money import format_usdc

    rows: list[tuple[str, str]] = [
        ("task", outcome.task_id),
        ("status", outcome.status.status if outcome.status else "submitted"),
    ]
    if outcome.attached:
        rows.append(("payment", "none: attached to the job already paid for this exact request"))
    if outcome.payment and outcome.payment.paid_by == "x402":
        p = outcome.payment
        rows += [
            ("paid", f"{format_usdc(p.amount)} on {p.network} to {p.pay_to}"),
            ("payer", p.payer),
            ("transaction", p.transaction or "(the server sent no receipt)"),
        ]
    if outcome.payment and outcome.payment.paid_by == "credits":
        rows.append(("paid", "from provider credits: 0 USDC, no budget used"))
    if outcome.status and outcome.status.video_url:
        rows.append(("video url", outcome.status.video_url))
    from ..results import coin_line, delivery_facts

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
        _echo(f"{name:>12}  {value}")


def _budget_line(service: ImagineService) -> str:
    return service.budget().vocabulary()


def _open(as_json: bool, base_url: str | None = None) -> Books:
    from ..books import Books
    from ..config import load_settings
    from ..errors import ImagineError

    settings = load_settings(**({"base_url": base_url} if base_url is not None else {}))  # errors: exit 2
    try:
        return Books(settings)
    except (ImagineError, OSError) as exc:
        raise _fail(f"cannot open the books: {exc}", "configuration", 2, as_json) from None
