"""``imagine-agent quote | generate | status | wait | download | chat``: buying and following videos."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ._common import (
    AsJson,
    BaseUrl,
    MaxPerCall,
    Model,
    TaskId,
    Yes,
    _confirm_coin,
    _progress,
    _service,
    _settings,
    _summary,
)
from ._output import _RUN, _begin, _echo, _emit, _err, _escape

if TYPE_CHECKING:
    from ..models import TaskStatus
    from ..service import ImagineService


Duration = Annotated[Optional[float], typer.Option(help="Seconds of video (default 8)")]
Image = Annotated[Optional[str], typer.Option(help="Start image: http(s) URL, data URL or local file")]
Remix = Annotated[Optional[str], typer.Option(help="Sora video id to remix")]
AutoEnhance = Annotated[bool, typer.Option("--auto-enhance", help="Let the server enhance the prompt")]
AutoClank = Annotated[bool, typer.Option("--auto-clank", help="Coin the video (the paying wallet becomes its creator)")]
Prompt = Annotated[str, typer.Argument(help="What the video should show")]


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
        result = service.quote(
            prompt,
            duration=duration,
            image=image,
            auto_clank=auto_clank,
            auto_enhance=auto_enhance,
            remix=remix,
            video_model=model,
            all_models=True,
        )
        if as_json:
            _emit({**result.to_json(), **({} if result.allowed else {"exitCode": 3})})
        else:
            from ..money import format_usdc

            r = result.quote.requirement
            chosen = model or result.quote.default_model
            _echo(
                f"price: {format_usdc(r.amount)} on {r.network} to {r.pay_to}"
                + (f" ({chosen})" if chosen else "")
                + f" · x402 v{r.x402_version}"
            )
            for name, amount in result.model_prices.items():
                default = "  (server default)" if name == result.quote.default_model else ""
                _echo(f"  model {name:<20} {format_usdc(amount)}{default}")
            _echo(f"largest next payment: {format_usdc(result.remaining)}{' (sandbox)' if result.sandbox else ''}")
            _echo("within policy: yes" if result.allowed else f"within policy: NO ({result.refusal})")
        if not result.allowed:
            raise typer.Exit(3)


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
            from ..errors import ApprovalDeniedError

            try:
                _confirm_coin(service.address, as_json)
            except ApprovalDeniedError:
                service.audit_decision(False, f"a coin for the video {prompt[:80]!r}", "cli")
                raise
            service.audit_decision(True, f"a coin for the video {prompt[:80]!r}", "cli")
        with _progress(not as_json and not no_wait) as on_progress:
            outcome = service.generate(
                prompt,
                duration=duration,
                image=image,
                auto_clank=auto_clank,
                auto_enhance=auto_enhance,
                remix=remix,
                video_model=model,
                wait=not no_wait,
                output_dir=output,
                on_progress=on_progress,
                attach=not new,
            )
        if as_json:
            _emit(outcome.to_json())
        else:
            _summary(outcome, service)


def _known_status(service: ImagineService, task_id: str) -> TaskStatus:
    """The task's status; an unknown task is ``TaskNotFoundError`` (exit 5), never a status to print."""
    from ..errors import TaskNotFoundError

    result = service.status(task_id)
    if result.status == "not_found":
        raise TaskNotFoundError(
            f"the server does not know task {task_id!r}: check the id (`imagine-agent "
            "receipts` lists the tasks paid for)",
            status_code=404,
        )
    return result


def _status_line(task_id: str, result: TaskStatus) -> str:
    progress = f" {result.progress}%" if result.progress is not None else ""
    return f"{task_id}: {result.status}{progress}"


def status(task_id: TaskId, base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """Show a task's status once (needs no key). Exit 5 if the server does not know the task."""
    _begin(as_json)
    with _service(_settings(base_url), pays=False, quiet=as_json) as service:
        result = _known_status(service, task_id)
        if as_json:
            _emit(result.to_wire())
        else:
            _echo(_status_line(task_id, result))
            if result.video_url:
                _echo(f"video: {result.video_url}")
            if result.media_url:
                _echo(f"media page: {result.media_url}")


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
            _echo(f"{task_id}: {result.status}  video: {result.video_url}")


def download(
    task_id: TaskId,
    output: Annotated[Path, typer.Option("--output", "-o", help="Download directory")] = Path("imagine-output"),
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Download a completed task's video and preview image (needs no key)."""
    _begin(as_json)
    from ..service import check_output_dir

    with _service(_settings(base_url), pays=False, quiet=as_json) as service:
        check_output_dir(output)
        found = _known_status(service, task_id)
        files = service.download(task_id, output, status=found)
        if as_json:
            _emit(
                {
                    "taskId": task_id,
                    "videoPath": str(files.video),
                    "previewPath": str(files.preview) if files.preview else None,
                }
            )
        else:
            _echo(f"video: {files.video}")
            if files.preview:
                _echo(f"preview: {files.preview}")


class _ClankPolicy(StrEnum):
    never = "never"
    ask = "ask"
    agent = "agent"
    always = "always"


def chat(
    message: Annotated[Optional[str], typer.Argument(help="One message; omit for an interactive chat")] = None,
    model: Annotated[
        Optional[str], typer.Option(help="Chat model (env IMAGINE_MODEL); default: offline planner")
    ] = None,
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
        from ..agent.chat import run_chat

        code = run_chat(service, message, yes=yes, as_json=as_json)
    if code:
        raise typer.Exit(code)


def _chat_first_line(message: str | None, base_url: str | None) -> str:
    """What is about to happen and where the money goes, from the flag, environment and TOML file only (cheap:
    no settings, no service, no agent yet); the settings decide, and the service's banner follows."""
    from ..redact import redact_url

    url = (base_url or os.environ.get("IMAGINE_BASE_URL", "")).strip()
    if not url and base_url is None:
        try:
            import tomllib

            config = Path(os.environ.get("IMAGINE_CONFIG") or "imagine.toml")
            found = tomllib.loads(config.read_text()).get("base_url") if config.is_file() else None
            url = found.strip() if isinstance(found, str) else ""
        except (OSError, ValueError):  # the settings will say what is wrong with the file
            url = ""
    where = (
        "[bold yellow]embedded sandbox: no real money moves[/]"
        if not url
        else f"paying the API at {_escape(redact_url(url))}"
    )
    if message is None:
        return (
            f"[bold]Chat with the video agent[/] ({where}). Describe a video; 'exit' or Ctrl-D to quit. "
            "Starting the agent…"
        )
    return (
        f"[bold]Chat with the video agent[/] ({where}). It reads your message and, for a video, quotes it, pays "
        "within the operator's caps, waits for it and narrates. Starting the agent…"
    )
