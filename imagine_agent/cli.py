"""``imagine-agent``: quote, generate, wait, download; budget, receipts, reconcile; sandbox, devnet, wallet.

Heavy imports (httpx, pydantic, eth-account, langchain) happen inside commands, so ``--help`` is fast.
Exit codes: 0 done, 1 generation failed, 2 bad input, 3 refused (nothing signed), 4 unknown/network.
``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from .config import Settings
    from .models import TaskStatus
    from .service import ImagineService

app = typer.Typer(
    name="imagine-agent",
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

BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="Imagine API URL (env IMAGINE_BASE_URL); unset = sandbox")]
MaxPerCall = Annotated[
    Optional[Decimal],
    typer.Option("--max-per-call", help="Per-call cap in USDC (env IMAGINE_MAX_PER_CALL, default 5)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Approve payments over the approval threshold")]
Model = Annotated[
    Optional[str],
    typer.Option("--model", help="Video model, any the server lists (see `quote`); default: the server's default"),
]


def main() -> None:
    app()


# -------------------------------------------------------------------------------------------- plumbing


def _err(text: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(text)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


def _settings(base_url: str | None = None, max_per_call: Decimal | None = None, *, as_json: bool = False) -> Settings:
    from .config import Settings

    overrides: dict[str, Any] = {}
    if base_url is not None:
        overrides["base_url"] = base_url
    if max_per_call is not None:
        overrides["max_per_call"] = max_per_call
    try:
        return Settings(**overrides)
    except (ValueError, OSError, RecursionError) as exc:  # ValidationError, TOMLDecodeError, SettingsError...
        if as_json:
            _print_json({"error": "ConfigurationError", "message": _config_problem(exc), "exitCode": 2})
        else:
            _err(f"[bold red]ConfigurationError:[/] {_escape(_config_problem(exc))}")
        raise typer.Exit(2) from None


def _config_problem(exc: Exception) -> str:
    """What is wrong with the settings, naming fields but never their values (one may be the key)."""
    import os
    import tomllib

    from pydantic import ValidationError

    source = f"the IMAGINE_* environment variables or {os.environ.get('IMAGINE_CONFIG', 'imagine.toml')}"
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {str(err['msg']).removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        return f"invalid settings in {source}: {problems}"
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"{os.environ.get('IMAGINE_CONFIG', 'imagine.toml')} is not valid TOML: {exc}"
    return f"cannot read the settings from {source}: {type(exc).__name__}: {exc}"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _approver(yes: bool, as_json: bool) -> Callable[[Any], bool]:
    def approve(request: Any) -> bool:
        if yes:
            return True
        if as_json or not sys.stdin.isatty():
            return False
        return typer.confirm(f"Approve: {request}?", default=False, err=True)

    return approve


@contextmanager
def _service(settings: Settings, *, yes: bool = False, as_json: bool = False,
             quiet: bool = False) -> Iterator[ImagineService]:
    """Open the service, print errors by the exit-code contract, and close it."""
    from .errors import AwaitingApprovalError, ImagineError, exit_code_for

    service = None
    try:
        from .service import SANDBOX_NOTICE, ImagineService

        service = ImagineService.create(settings, approver=_approver(yes, as_json),
                                        password_prompt=lambda: typer.prompt("Keystore password", hide_input=True))
        if service.is_sandbox and not quiet:
            _err(f"[bold yellow]{SANDBOX_NOTICE}[/]")
        yield service
    except ImagineError as exc:
        code = exit_code_for(exc)
        if as_json:
            _print_json({"error": type(exc).__name__, "code": exc.code, "message": str(exc), "exitCode": code,
                         **({"approvalId": exc.approval_id} if isinstance(exc, AwaitingApprovalError) else {})})
        else:
            _err(f"[bold red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(code) from None
    finally:
        if service is not None:
            service.close()


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[TaskStatus], None]]:
    if not enabled:
        yield lambda status: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("queued", total=100)

        def update(status: TaskStatus) -> None:
            done = 100 if status.status == "completed" else (status.progress or 0)
            bar.update(task, completed=done, description=status.status)

        yield update


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

    facts = delivery_facts(outcome.status, outcome.payment.payer if outcome.payment else service.wallet.address)
    if facts.get("mediaUrl"):
        rows.append(("media page", facts["mediaUrl"]))
    if (coin := coin_line(facts)) is not None:
        rows.append(("coin", coin))
    if outcome.downloads:
        rows.append(("video file", str(outcome.downloads.video)))
        if outcome.downloads.preview:
            rows.append(("preview", str(outcome.downloads.preview)))
    rows.append(("budget left", _budget_line(service)))
    if service.is_sandbox:
        rows.append(("note", "sandbox: no real money moved"))
    for name, value in rows:
        typer.echo(f"{name:>12}  {value}")


def _budget_line(service: ImagineService) -> str:
    from .money import format_usdc

    t = service.budget().totals
    parts = []
    if t.remaining_daily is not None:
        parts.append(f"{format_usdc(t.remaining_daily)} today")
    if t.remaining_total is not None:
        parts.append(f"{format_usdc(t.remaining_total, unit=False)} in total")
    return ", ".join(parts) or "no caps"


# -------------------------------------------------------------------------------------------- commands


@app.command()
def quote(
    prompt: str,
    duration: Annotated[Optional[float], typer.Option(help="Seconds (default 8)")] = None,
    image: Annotated[Optional[str], typer.Option(help="http(s) URL, data URL or local file")] = None,
    auto_clank: Annotated[bool, typer.Option("--auto-clank")] = False,
    auto_enhance: Annotated[bool, typer.Option("--auto-enhance")] = False,
    remix: Annotated[Optional[str], typer.Option(help="Sora video id to remix")] = None,
    model: Model = None,
    base_url: BaseUrl = None,
    max_per_call: MaxPerCall = None,
    as_json: AsJson = False,
) -> None:
    """Ask the price of a video, and of the same video in each model the server lists. Signs nothing, pays nothing."""
    with _service(_settings(base_url, max_per_call, as_json=as_json), as_json=as_json) as service:
        result = service.quote(prompt, duration=duration, image=image, auto_clank=auto_clank,
                               auto_enhance=auto_enhance, remix=remix, video_model=model, all_models=True)
        if as_json:
            _print_json(result.to_json())
            return
        from .money import format_usdc

        r = result.quote.requirement
        chosen = model or result.quote.default_model
        typer.echo(f"price: {format_usdc(r.amount)} on {r.network} to {r.pay_to}"
                   + (f" ({chosen})" if chosen else "") + f" · x402 v{r.x402_version}")
        for name, amount in result.model_prices.items():
            default = "  (server default)" if name == result.quote.default_model else ""
            typer.echo(f"  model {name:<20} {format_usdc(amount)}{default}")
        typer.echo(f"budget left: {format_usdc(result.remaining)}")
        typer.echo("within policy: yes" if result.allowed else f"within policy: NO ({result.refusal})")


@app.command()
def generate(
    prompt: str,
    duration: Annotated[Optional[float], typer.Option(help="Seconds (default 8)")] = None,
    image: Annotated[Optional[str], typer.Option(help="http(s) URL, data URL or local file")] = None,
    auto_clank: Annotated[bool, typer.Option("--auto-clank", help="Coin the video (you become creator)")] = False,
    auto_enhance: Annotated[bool, typer.Option("--auto-enhance", help="Let the server enhance the prompt")] = False,
    remix: Annotated[Optional[str], typer.Option(help="Sora video id to remix")] = None,
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
    with _service(_settings(base_url, max_per_call, as_json=as_json), yes=yes, as_json=as_json) as service:
        with _progress(not as_json and not no_wait) as on_progress:
            outcome = service.generate(
                prompt, duration=duration, image=image, auto_clank=auto_clank, auto_enhance=auto_enhance,
                remix=remix, video_model=model, wait=not no_wait, output_dir=output, on_progress=on_progress,
                attach=not new,
            )
        if as_json:
            _print_json(outcome.to_json())
        else:
            _summary(outcome, service)


@app.command()
def status(task_id: str, base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """Show a task's status once."""
    with _service(_settings(base_url, as_json=as_json), as_json=as_json, quiet=as_json) as service:
        result = service.status(task_id)
        if as_json:
            _print_json(result.to_wire())
        else:
            typer.echo(f"{task_id}: {result.status}" + (f" {result.progress}%" if result.progress is not None else ""))
            if result.video_url:
                typer.echo(f"video: {result.video_url}")
            if result.media_url:
                typer.echo(f"media page: {result.media_url}")


@app.command()
def wait(
    task_id: str,
    timeout: Annotated[Optional[float], typer.Option(help="Give up after N seconds")] = None,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Wait for a task (by id, from any earlier run) to finish."""
    with _service(_settings(base_url, as_json=as_json), as_json=as_json, quiet=as_json) as service:
        with _progress(not as_json) as on_progress:
            result = service.wait(task_id, on_progress=on_progress, timeout=timeout)
        if as_json:
            _print_json(result.to_wire())
        else:
            typer.echo(f"{task_id}: {result.status}  video: {result.video_url}")


@app.command()
def download(
    task_id: str,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("imagine-output"),
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Download a completed task's video and preview image."""
    with _service(_settings(base_url, as_json=as_json), as_json=as_json, quiet=as_json) as service:
        files = service.download(task_id, output)
        if as_json:
            _print_json({"taskId": task_id, "videoPath": str(files.video),
                         "previewPath": str(files.preview) if files.preview else None})
        else:
            typer.echo(f"video: {files.video}")
            if files.preview:
                typer.echo(f"preview: {files.preview}")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8402,
    speed: Annotated[float, typer.Option(help="Time scale: 60 = a 2-minute job takes 2 s")] = 1.0,
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
    from .sandbox import SandboxConfig, load_faults, run

    try:
        if x402 not in ("v1", "v2", "both"):
            raise ValueError(f"--x402 must be v1, v2 or both, not {x402!r}")
        config = SandboxConfig(speed=speed, faults=load_faults(faults) if faults else [], network=network,
                               rpc_url=rpc_url, relayer_key=relayer_key, x402=x402, rich_results=rich_results)
    except (ValueError, OSError) as exc:  # a broken fault file, or a speed that is not positive
        _err(f"[bold red]invalid sandbox settings:[/] {_escape(str(exc))}")
        raise typer.Exit(2) from None
    if rpc_url is not None:
        from .chain import UsdcChain, rpc_origin
        from .errors import ImagineError

        try:
            with UsdcChain(rpc_url) as chain:
                chain.check(network)
        except ImagineError as exc:
            _err(f"[bold red]cannot settle on {_escape(rpc_origin(rpc_url))}:[/] {_escape(str(exc))}")
            raise typer.Exit(2) from None
        _err(f"[bold yellow]Sandbox on http://{host}:{port}, settling on the chain at {rpc_origin(rpc_url)}[/] "
             f"(USDC moves there). Use: IMAGINE_BASE_URL=http://{host}:{port} IMAGINE_RPC_URL=<that RPC URL> "
             "IMAGINE_ALLOW_PRIVATE_IMAGE_URLS=1")
    else:
        _err(f"[bold yellow]Sandbox on http://{host}:{port} — no real money moves.[/] "
             f"Use: IMAGINE_BASE_URL=http://{host}:{port} IMAGINE_ALLOW_PRIVATE_IMAGE_URLS=1")
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
        _print_json(net.info())
        _err(f"[bold yellow]Devnet on {net.rpc_url} (chain {net.network.chain_id}): Circle's USDC at "
             f"{net.network.usdc}; throwaway keys, not real money.[/] Ctrl-C stops it.")
        net.wait()
    except KeyboardInterrupt:
        pass
    finally:
        net.stop()


@app.command()
def budget(
    freeze: Annotated[bool, typer.Option("--freeze", help="Kill switch: stop all payments now")] = False,
    unfreeze: Annotated[bool, typer.Option("--unfreeze", help="Allow payments again")] = False,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Caps, spent, reserved, unknown and what remains; --freeze/--unfreeze the kill switch."""
    with _service(_settings(base_url, as_json=as_json), as_json=as_json, quiet=as_json) as service:
        if freeze:
            service.freeze("frozen from the CLI")
        if unfreeze:
            service.unfreeze()
        report = service.budget()
        if as_json:
            _print_json(report.to_json())
            return
        from .money import format_usdc

        t, c = report.totals, report.caps

        def fmt(v: int | None) -> str:
            return "unlimited" if v is None else format_usdc(v)

        typer.echo(f"wallet {report.address}{'  FROZEN' if t.frozen else ''}")
        typer.echo(f"spent {format_usdc(t.spent)} · reserved {format_usdc(t.reserved)} · unknown {format_usdc(t.unknown)}")
        typer.echo(f"per call {fmt(c.per_call)} · daily {fmt(c.daily)} (left {fmt(t.remaining_daily)}) · "
                   f"total {fmt(c.total)} (left {fmt(t.remaining_total)})")


@app.command()
def receipts(
    limit: Annotated[Optional[int], typer.Option(help="Newest N only")] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout")] = False,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Every payment: task, amount, transaction, state."""
    with _service(_settings(base_url, as_json=as_json), as_json=as_json, quiet=as_json or csv_out) as service:
        rows = [_receipt_row(r) for r in service.receipts(limit)]
        if as_json:
            _print_json({"payments": rows})
        elif csv_out:
            import csv

            writer = csv.DictWriter(sys.stdout, fieldnames=list(_receipt_row(None).keys()))
            writer.writeheader()
            writer.writerows(rows)
        else:
            for r in rows:
                typer.echo(f"{r['createdAt']}  {r['state']:<9} {r['amount']:>10}  task {r['taskId'] or '-'}  "
                           f"tx {r['transaction'] or '-'}")
            if not rows:
                typer.echo("no payments yet")


def _receipt_row(record: Any) -> dict[str, Any]:
    if record is None:
        keys = ["id", "state", "amount", "asset", "network", "payTo", "payer", "nonce", "taskId", "transaction",
                "reason", "createdAt"]
        return dict.fromkeys(keys)
    import datetime as dt

    return {
        "id": record.id, "state": str(record.state.value), "amount": str(record.amount), "asset": record.asset,
        "network": record.network, "payTo": record.pay_to, "payer": record.payer, "nonce": record.nonce,
        "taskId": record.task_id, "transaction": record.transaction, "reason": record.reason,
        "createdAt": dt.datetime.fromtimestamp(record.created_at, dt.UTC).isoformat(timespec="seconds"),
    }


@app.command()
def reconcile(base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """Settle what can be proven: release expired rejected payments, flag interrupted ones."""
    with _service(_settings(base_url, as_json=as_json), as_json=as_json, quiet=as_json) as service:
        changed = service.reconcile()
        if as_json:
            _print_json({"changed": [_receipt_row(r) for r in changed]})
        else:
            typer.echo(f"{len(changed)} payment(s) updated")
            for r in changed:
                typer.echo(f"  {r.id}: {r.state.value} ({r.reason})")


@wallet_app.command("new")
def wallet_new(
    keystore: Annotated[Optional[Path], typer.Option(help="Keystore file (default: DATA_DIR/keystore.json)")] = None,
    print_key: Annotated[bool, typer.Option("--print-key", help="Print the raw key instead (shown once)")] = False,
) -> None:
    """Create a paying key in an encrypted keystore (password from IMAGINE_KEYSTORE_PASSWORD or a prompt)."""
    from .x402 import PrivateKeySigner

    signer = PrivateKeySigner.generate()
    if print_key:
        typer.echo(f"address: {signer.address}")
        typer.echo(f"export IMAGINE_PRIVATE_KEY={signer.export_private_key()}  # shown once, store it safely")
        return
    from eth_account import Account

    settings = _settings()
    path = keystore or settings.data_dir / "keystore.json"
    if path.exists():
        _err(f"[bold red]{path} exists;[/] choose another --keystore path")
        raise typer.Exit(2)
    if settings.keystore_password is not None:
        password = settings.keystore_password.get_secret_value()
    else:
        password = typer.prompt("Keystore password", hide_input=True, confirmation_prompt=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(bytes.fromhex(signer.export_private_key()[2:]), password)))
    path.chmod(0o600)
    typer.echo(f"address: {signer.address}")
    typer.echo(f"keystore: {path}  (export IMAGINE_KEYSTORE={path})")


@wallet_app.command("address")
def wallet_address() -> None:
    """Show the paying wallet's address (never the key)."""
    from .errors import ImagineError, exit_code_for
    from .service import load_signer

    try:
        typer.echo(load_signer(_settings(), lambda: typer.prompt("Keystore password", hide_input=True)).address)
    except ImagineError as exc:
        _err(f"[bold red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(exit_code_for(exc)) from None



@app.command()
def chat(
    message: Annotated[Optional[str], typer.Argument(help="One message; omit for an interactive chat")] = None,
    model: Annotated[Optional[str], typer.Option(help="Chat model (env IMAGINE_MODEL); default: offline planner")] = None,
    auto_clank: Annotated[Optional[str], typer.Option("--auto-clank", help="never|ask|agent|always")] = None,
    yes: Yes = False,
    base_url: BaseUrl = None,
    max_per_call: MaxPerCall = None,
    as_json: AsJson = False,
) -> None:
    """Talk to the video agent: it enhances the prompt, quotes, pays within budget, waits and narrates."""
    from .chat import run_chat

    settings = _settings(base_url, max_per_call, as_json=as_json)
    overrides: dict[str, Any] = {}
    if model is not None:
        overrides["model"] = model
    if auto_clank is not None:
        overrides["auto_clank"] = auto_clank
    if overrides:
        settings = settings.model_copy(update=overrides)
    with _service(settings, yes=yes, as_json=as_json) as service:
        run_chat(service, message, yes=yes, as_json=as_json)


@app.command()
def mcp(
    transport: Annotated[str, typer.Option(help="stdio or streamable-http")] = "stdio",
    port: Annotated[int, typer.Option(help="Port for streamable-http")] = 8765,
    base_url: BaseUrl = None,
) -> None:
    """Serve quote/generate/status/budget over the Model Context Protocol (Claude Desktop, Cursor, ElizaOS)."""
    from .mcp_server import serve

    serve(_settings(base_url), transport=transport, port=port)
