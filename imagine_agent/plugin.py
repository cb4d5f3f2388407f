"""An ElizaOS-shaped plugin: buy videos from chat, with the budget and pending jobs in the agent's context.

The parts are plain dataclasses with ElizaOS's field names and call signatures, so any host that
calls ``action.validate(runtime, message, state)`` → ``action.handler(runtime, message, state, options,
callback)`` and ``provider.get(runtime, message, state)`` can drive them; no import of ``elizaos``
happens unless you ask for it. ``elizaos_plugin()`` adapts them to the real ``elizaos`` Python types
(verified against elizaos 2.0.0a5), and ``register(runtime)`` picks the right form for a runtime.

    from elizaos import AgentRuntime
    from imagine_agent.plugin import elizaos_plugin
    runtime = AgentRuntime(plugins=[elizaos_plugin()], settings={"IMAGINE_DAILY_CAP": "5"})

Every action only parses the message, calls ``ImagineService`` (which alone checks, reserves, signs and
journals payments) and narrates the result. Caps come from the operator's settings, never from a
message or an action option.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from .config import Settings
from .errors import AwaitingApprovalError, ConfigurationError, ImagineError
from .models import TaskStatus
from .money import format_usdc
from .results import coin_line, delivery_facts
from .service import BudgetReport, GenerationOutcome, ImagineService

__all__ = [
    "CONFIG_KEYS",
    "Action",
    "Evaluator",
    "ImagineVideoService",
    "Plugin",
    "Provider",
    "elizaos_plugin",
    "imagine_plugin",
    "register",
    "settings_from_runtime",
]

log = logging.getLogger(__name__)

Content = dict[str, Any]
Callback = Callable[[Content], Awaitable[Any]]
Validator = Callable[[Any, Any, Any], Awaitable[bool]]
Handler = Callable[..., Awaitable[dict[str, Any]]]

# Plugin setting -> Settings field. Read from the runtime (character settings/secrets), then the plugin
# config, then the IMAGINE_* environment. Only the operator sets these.
CONFIG_KEYS: dict[str, str] = {
    "IMAGINE_BASE_URL": "base_url",
    "IMAGINE_PRIVATE_KEY": "private_key",
    "IMAGINE_KEYSTORE": "keystore",
    "IMAGINE_KEYSTORE_PASSWORD": "keystore_password",
    "IMAGINE_DATA_DIR": "data_dir",
    "IMAGINE_LEDGER_URL": "ledger_url",
    "IMAGINE_MAX_PER_CALL": "max_per_call",
    "IMAGINE_DAILY_CAP": "daily_cap",
    "IMAGINE_TOTAL_CAP": "total_cap",
    "IMAGINE_SESSION_CAP": "session_cap",
    "IMAGINE_RATE_PER_MINUTE": "rate_per_minute",
    "IMAGINE_APPROVAL_THRESHOLD": "approval_threshold",
    "IMAGINE_AUTO_CLANK": "auto_clank",
    "IMAGINE_SANDBOX_SPEED": "sandbox_speed",
}


# ------------------------------------------------------------------------------------------ the shapes


@dataclass(frozen=True)
class Action:
    """ElizaOS ``Action``: the runtime calls ``validate`` to offer it, then ``handler`` to run it."""

    name: str
    description: str
    similes: list[str]
    examples: list[list[dict[str, Any]]]
    validate: Validator
    handler: Handler


@dataclass(frozen=True)
class Provider:
    """ElizaOS ``Provider``: ``get`` returns ``{text, values, data}`` for the agent's state."""

    name: str
    description: str
    get: Callable[[Any, Any, Any], Awaitable[dict[str, Any]]]
    dynamic: bool = False


@dataclass(frozen=True)
class Evaluator:
    """ElizaOS ``Evaluator``: runs after a response; ``validate`` decides whether ``handler`` runs."""

    name: str
    description: str
    similes: list[str]
    examples: list[dict[str, Any]]
    validate: Validator
    handler: Handler
    always_run: bool = True


@dataclass(frozen=True)
class Plugin:
    """ElizaOS ``Plugin``: what a host registers (init first, then actions, providers, evaluators, services)."""

    name: str
    description: str
    init: Callable[[Mapping[str, Any], Any], Awaitable[None]]
    config: dict[str, str | None]
    services: list[type[ImagineVideoService]]
    actions: list[Action]
    providers: list[Provider]
    evaluators: list[Evaluator]


# ---------------------------------------------------------------------------------------- the service


def _setting(runtime: Any, key: str) -> Any:
    get = getattr(runtime, "get_setting", None)
    return get(key) if callable(get) else None


def settings_from_runtime(runtime: Any, config: Mapping[str, Any] | None = None) -> Settings:
    """Operator settings for the plugin: runtime settings, then plugin config, then ``IMAGINE_*`` env."""
    values: dict[str, Any] = {}
    for key, name in CONFIG_KEYS.items():
        value = _setting(runtime, key)
        if value is None and config is not None:
            value = config.get(key)
        if value is not None and value != "":
            values[name] = value
    try:
        return Settings(**values)
    except ValueError as exc:
        # Name the setting, never echo its value: it may be a key.
        errors: list[Any] = exc.errors() if hasattr(exc, "errors") else []
        names = sorted({_key_for(str(e["loc"][0])) for e in errors if e.get("loc")}) or ["settings"]
        raise ConfigurationError(f"invalid plugin setting(s): {', '.join(names)}; check their format") from None


def _key_for(field_name: str) -> str:
    return next((k for k, v in CONFIG_KEYS.items() if v == field_name), field_name)


class ImagineVideoService:
    """The long-lived ``ImagineService`` of one agent (ElizaOS ``Service``: ``start(runtime)``, ``stop()``).

    It also keeps the videos delivered in chat, which the evaluator records and the pending-videos
    provider shows.
    """

    service_type: ClassVar[str] = "imagine_video"
    capability_description: ClassVar[str] = (
        "Buys AI videos from the Imagine API: quotes, pays per request in USDC on Base (x402) within "
        "operator caps, waits for the render and delivers the file."
    )

    def __init__(self, runtime: Any = None, service: ImagineService | None = None) -> None:
        self._runtime = runtime
        self._config: object | None = None
        self._service = service
        self.unrecorded: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, runtime: Any) -> ImagineVideoService:
        """Open the service. Payments over the approval threshold go to the operator's ``IMAGINE_APPROVER``
        runtime setting (a callable given the ``ApprovalRequest``, run off the event loop); without one
        they are declined and nothing is signed."""
        settings = settings_from_runtime(runtime)
        approver = _setting(runtime, "IMAGINE_APPROVER")
        service = await asyncio.to_thread(ImagineService.create, settings,
                                          approver=approver if callable(approver) else None)
        service.queue_approvals("plugin")  # no callback: the operator decides in the approvals queue
        service.output_dir = settings.data_dir / "videos"
        return cls(runtime, service)

    async def stop(self) -> None:
        if self._service is not None:
            service, self._service = self._service, None
            await asyncio.to_thread(service.close)

    @property
    def service(self) -> ImagineService:
        if self._service is None:
            raise ConfigurationError("the Imagine video service is stopped")
        return self._service

    def deliver(self, record: dict[str, Any]) -> None:
        """Note a video handed to the user; the evaluator records it."""
        if not any(r["taskId"] == record["taskId"] for r in [*self.unrecorded, *self.delivered]):
            self.unrecorded.append(record)


def _video_service(runtime: Any) -> ImagineVideoService | None:
    get = getattr(runtime, "get_service", None)
    found = get(ImagineVideoService.service_type) if callable(get) else None
    return found if isinstance(found, ImagineVideoService) else None


def _require_service(runtime: Any) -> ImagineVideoService:
    found = _video_service(runtime)
    if found is None:
        raise ConfigurationError("the imagine plugin's service is not running: register the plugin first")
    return found


# ------------------------------------------------------------------------------------ reading messages

_VIDEO_WORDS = re.compile(r"\b(videos?|clips?|films?|movies?|animat\w*)\b", re.I)
_PRICE_WORDS = re.compile(r"\b(price|prices|cost|costs|quote|how much)\b", re.I)
_MAKE_WORDS = re.compile(r"\b(make|generate|create|render|produce|film|shoot|animate|imagine)\b", re.I)
_STATUS_WORDS = re.compile(r"\b(status|progress|ready|done|finished|how is|how's)\b", re.I)
_TASK_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_DURATION = re.compile(r"\b(\d{1,2}(?:\.\d+)?)\s*-?\s*(?:seconds|second|secs|sec|s)\b", re.I)
_SECONDS = r"\d{1,2}(?:\.\d+)?\s*-?\s*(?:seconds|second|secs|sec|s)\b"
_ASK = re.compile(
    r"^\s*(?:hey\s+\w+[,!]?\s+)?(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?"
    r"(?:what(?:'s|\s+is)\s+the\s+price\s+of|(?:how\s+much\s+(?:would|does|will|is)(?:\s+it\s+cost\s+to\s+(?:make|get|generate))?)|quote|price|"
    r"make|generate|create|render|produce|film|shoot|animate)"
    r"\s+(?:me\s+|us\s+)?(?:an?\s+|the\s+)?(?:price\s+(?:of|for)\s+(?:an?\s+)?)?"
    rf"(?:{_SECONDS}\s*(?:long\s+)?)?"
    r"(?:videos?|clips?|films?|movies?|animations?)?\s*(?:of|about|showing|where|with|:)?\s*",
    re.I,
)
_COST_TAIL = re.compile(r"\s+(?:cost|costs|be)\s*\??\s*$", re.I)


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, Mapping) else getattr(message, "content", None)
    text = content.get("text") if isinstance(content, Mapping) else getattr(content, "text", None)
    return text if isinstance(text, str) else ""


def _options(options: Any) -> dict[str, Any]:
    """Action options as a dict: a mapping, or ElizaOS's options object with ``parameters``."""
    params = options.get("parameters") if isinstance(options, Mapping) else getattr(options, "parameters", None)
    merged = dict(options) if isinstance(options, Mapping) else {}
    if isinstance(params, Mapping):
        merged.update(params)
    merged.pop("parameters", None)
    return merged


def _prompt_of(text: str, options: Mapping[str, Any]) -> str:
    prompt = options.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return prompt.strip()
    asked = _COST_TAIL.sub("", _ASK.sub("", text, count=1))
    return asked.strip(" \t\n.!?,;:") or text.strip()


def _duration_of(text: str, options: Mapping[str, Any]) -> float | None:
    value = options.get("duration")
    if isinstance(value, int | float | str) and not isinstance(value, bool) and str(value).strip():
        try:
            return float(value)
        except ValueError:
            return None
    found = _DURATION.search(text)
    return float(found.group(1)) if found else None


def _video_model(options: Mapping[str, Any]) -> str | None:
    """The model the action was asked for (``videoModel``), any the server lists; None: its default."""
    value = options.get("videoModel") or options.get("video_model")
    return value if isinstance(value, str) and value.strip() else None


def _auto_clank(settings: Settings, options: Mapping[str, Any]) -> bool:
    """Operator policy decides (rule 6): ``never``/``always`` win; ``agent``/``ask`` follow the request."""
    if settings.auto_clank == "never":
        return False
    if settings.auto_clank == "always":
        return True
    return options.get("autoClank") is True or options.get("auto_clank") is True


# ---------------------------------------------------------------------------------------- narration


def _usdc(atomic: int) -> str:
    whole, _, frac = format_usdc(atomic, unit=False).partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')} USDC"


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def _delivery(outcome: GenerationOutcome) -> dict[str, Any]:
    status = outcome.status
    return {
        "taskId": outcome.task_id,
        "prompt": outcome.prompt,
        "videoUrl": status.video_url if status else None,
        "previewUrl": status.preview_url if status else None,
        "videoPath": str(outcome.downloads.video) if outcome.downloads else None,
        "amount": str(outcome.payment.amount) if outcome.payment else None,
        "transaction": outcome.payment.transaction if outcome.payment else None,
        **delivery_facts(status, outcome.payment.payer if outcome.payment else None),
    }


def _left(report: BudgetReport) -> int | None:
    """What remains of the tightest budget window (daily, total, session); None when uncapped."""
    t = report.totals
    windows = [w for w in (t.remaining_daily, t.remaining_total, t.remaining_session) if w is not None]
    return min(windows) if windows else None


def _narrate(outcome: GenerationOutcome, left: int | None, auto_clank: bool, payer: str) -> str:
    lines = [f'Your video is ready: "{outcome.prompt}"']
    if outcome.status and outcome.status.video_url:
        lines.append(f"Watch: {outcome.status.video_url}")
    facts = delivery_facts(outcome.status, payer)
    if facts.get("mediaUrl"):
        lines.append(f"Media page: {facts['mediaUrl']}")
    if (coin := coin_line(facts)) is not None:
        lines.append(f"Coin: {coin}")
        auto_clank = False  # said already, with the coin's own address
    if outcome.downloads:
        lines.append(f"Saved to {outcome.downloads.video}")
    if outcome.attached:
        lines.append("No new payment: this exact request was already paid for, so I picked up that job.")
    if outcome.payment and outcome.payment.paid_by == "credits":
        lines.append("Paid from the provider's credits: no USDC moved, no budget used.")
    elif outcome.payment:
        p = outcome.payment
        tx = f", transaction {p.transaction}" if p.transaction else ""
        lines.append(f"Paid {_usdc(p.amount)} on {p.network} to {_short(p.pay_to)}{tx}.")
    if left is not None:
        lines.append(f"Budget left: {_usdc(left)}.")
    if auto_clank:
        lines.append(f"A Clanker coin was deployed for it; the paying wallet {payer} is its creator "
                     "and earns its trading fees.")
    if outcome.sandbox:
        lines.append("(Sandbox: no real money moved.)")
    return "\n".join(lines)


def _content(text: str, action: str, **extra: Any) -> Content:
    return {"text": text, "actions": [action], "source": "imagine", **extra}


def _attachment(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": record["taskId"], "url": record["videoUrl"] or record["videoPath"] or "",
            "title": "Imagine video", "source": "imagine", "description": record["prompt"],
            "content_type": "video/mp4"}


async def _say(callback: Callback | None, content: Content) -> None:
    if callback is not None:
        await callback(content)


def _failure(action: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ImagineError):
        message = str(exc)
    else:  # the traceback goes to the operator's log, never to the chat
        log.error("%s failed", action, exc_info=exc)
        message = f"unexpected {type(exc).__name__}; the operator's log has the details"
    data: dict[str, Any] = {"actionName": action, "error": type(exc).__name__, "code": getattr(exc, "code", None)}
    if isinstance(exc, AwaitingApprovalError):
        data["approvalId"] = exc.approval_id
    return {"success": False, "text": message, "error": message, "values": {"success": False}, "data": data}


class _Progress:
    """Turns polling updates into a few chat messages: each state change and every 25 %."""

    def __init__(self, callback: Callback | None, action: str) -> None:
        self.callback, self.action = callback, action
        self.last: tuple[str, int] | None = None

    async def __call__(self, status: TaskStatus) -> None:
        if status.status == "completed":
            return
        step = int(status.progress or 0) // 25 * 25
        if self.last == (status.status, step):
            return
        self.last = (status.status, step)
        text = "Queued at Imagine…" if status.status == "queued" else f"Rendering… {step}%"
        await _say(self.callback, _content(text, self.action, data={"status": status.status,
                                                                    "progress": status.progress}))


# ------------------------------------------------------------------------------------------ actions


async def _can_generate(runtime: Any, message: Any, state: Any = None) -> bool:
    text = _text(message)
    return (_video_service(runtime) is not None and bool(_VIDEO_WORDS.search(text) and _MAKE_WORDS.search(text))
            and not _PRICE_WORDS.search(text))


async def _generate(runtime: Any, message: Any, state: Any = None, options: Any = None,
                    callback: Callback | None = None, responses: Any = None) -> dict[str, Any]:
    """Quote, pay once (the service attaches to an already-paid identical request), wait, download, narrate."""
    name = "GENERATE_VIDEO"
    try:
        video = _require_service(runtime)
        service = video.service
        opts, text = _options(options), _text(message)
        prompt, duration = _prompt_of(text, opts), _duration_of(text, opts)
        clank = _auto_clank(service.settings, opts)
        model = _video_model(opts)
        quote = await service.aquote(prompt, duration=duration, auto_clank=clank, video_model=model)
        if not quote.allowed:
            refusal = f"I can't buy that video: {quote.refusal}. Nothing was paid."
            await _say(callback, _content(refusal, name))
            return {"success": False, "text": refusal, "error": quote.refusal or "refused",
                    "values": {"success": False}, "data": {"actionName": name, "quote": quote.to_json()}}
        await _say(callback, _content(f'Buying a video of "{prompt}" for {_usdc(quote.quote.amount)}…', name))
        outcome: GenerationOutcome = await service.agenerate(prompt, duration=duration, auto_clank=clank,
                                                             video_model=model, on_progress=_Progress(callback, name))
        left = _left(await service.abudget())
        record = _delivery(outcome)
        video.deliver(record)
        narration = _narrate(outcome, left, clank, service.wallet.address)
        narration += "".join(f" Budget warning: {warning}." for warning in outcome.warnings)
        await _say(callback, _content(narration, name, attachments=[_attachment(record)]))
        return {"success": True, "text": narration,
                "values": {"success": True, "videoGenerated": True, "taskId": outcome.task_id,
                           "videoUrl": record["videoUrl"]},
                "data": {"actionName": name, **outcome.to_json()}}
    except Exception as exc:  # every failure becomes a clear chat reply, never a traceback
        failure = _failure(name, exc)
        await _say(callback, _content(f"The video was not made: {failure['text']}", name))
        return failure


async def _can_quote(runtime: Any, message: Any, state: Any = None) -> bool:
    text = _text(message)
    return _video_service(runtime) is not None and bool(_VIDEO_WORDS.search(text)) and bool(_PRICE_WORDS.search(text))


async def _quote(runtime: Any, message: Any, state: Any = None, options: Any = None,
                 callback: Callback | None = None, responses: Any = None) -> dict[str, Any]:
    """Ask the price; signs and pays nothing."""
    name = "QUOTE_VIDEO"
    try:
        service = _require_service(runtime).service
        opts, text = _options(options), _text(message)
        prompt, duration = _prompt_of(text, opts), _duration_of(text, opts)
        result = await service.aquote(prompt, duration=duration, auto_clank=_auto_clank(service.settings, opts),
                                      video_model=_video_model(opts))
        price = _usdc(result.quote.amount)
        verdict = ("within my budget" if result.allowed else f"but I can't pay it: {result.refusal}")
        reply = f'A video of "{prompt}" costs {price}, {verdict}. I can spend up to {_usdc(result.remaining)} now.'
        await _say(callback, _content(reply, name))
        return {"success": True, "text": reply,
                "values": {"success": True, "price": str(result.quote.amount), "allowed": result.allowed},
                "data": {"actionName": name, **result.to_json()}}
    except Exception as exc:
        failure = _failure(name, exc)
        await _say(callback, _content(f"I could not get a price: {failure['text']}", name))
        return failure


async def _can_check(runtime: Any, message: Any, state: Any = None) -> bool:
    text = _text(message)
    found = _video_service(runtime)
    if found is None:
        return False
    if _TASK_ID.search(text):
        return True
    return bool(_VIDEO_WORDS.search(text) and _STATUS_WORDS.search(text))


async def _check(runtime: Any, message: Any, state: Any = None, options: Any = None,
                 callback: Callback | None = None, responses: Any = None) -> dict[str, Any]:
    """Status of a task (by id, else the newest pending one); a completed video is downloaded and delivered."""
    name = "VIDEO_STATUS"
    try:
        video = _require_service(runtime)
        service = video.service
        opts = _options(options)
        task_id = opts.get("taskId") or opts.get("task_id")
        if not isinstance(task_id, str):
            found = _TASK_ID.search(_text(message))
            task_id = found.group(0) if found else None
        if task_id is None:
            pending = await asyncio.to_thread(service.pending)
            if not pending:
                reply = "No videos are in progress."
                await _say(callback, _content(reply, name))
                return {"success": True, "text": reply, "values": {"success": True, "pending": 0},
                        "data": {"actionName": name}}
            task_id = pending[0].task_id
        status = await service.astatus(task_id)
        extra: dict[str, Any] = {}
        if status.status == "completed":
            files = await asyncio.to_thread(service.download, task_id, None, status=status)
            task = await asyncio.to_thread(service.ledger.get_task, task_id)
            record = {"taskId": task_id, "prompt": task.prompt if task else "", "videoUrl": status.video_url,
                      "previewUrl": status.preview_url, "videoPath": str(files.video), "amount": None,
                      "transaction": None}
            video.deliver(record)
            reply = f"Video {task_id} is ready: {status.video_url}\nSaved to {files.video}"
            extra["attachments"] = [_attachment(record)]
        elif status.status in ("queued", "processing"):
            reply = f"Video {task_id} is {status.status}" + (f", {int(status.progress)}% done." if
                                                             status.progress is not None else ".")
        else:
            reply = f"Video {task_id} {status.status.replace('_', ' ')}."
        await _say(callback, _content(reply, name, **extra))
        return {"success": True, "text": reply,
                "values": {"success": True, "taskId": task_id, "status": status.status},
                "data": {"actionName": name, "taskId": task_id, **status.to_wire()}}
    except Exception as exc:
        failure = _failure(name, exc)
        await _say(callback, _content(f"I could not check that video: {failure['text']}", name))
        return failure


def _example(user: str, reply: str, action: str) -> list[dict[str, Any]]:
    return [{"name": "{{user1}}", "content": {"text": user}},
            {"name": "{{agentName}}", "content": {"text": reply, "actions": [action]}}]


GENERATE_VIDEO = Action(
    name="GENERATE_VIDEO",
    description="Make an AI video from a text prompt, paying the Imagine API per request in USDC "
    "(within the operator's budget), then deliver the file.",
    similes=["MAKE_VIDEO", "CREATE_VIDEO", "RENDER_VIDEO", "IMAGINE_VIDEO", "TEXT_TO_VIDEO"],
    examples=[
        _example("Make a video of a fox running through snow at dawn", "On it — buying that video now.",
                 "GENERATE_VIDEO"),
        _example("Can you generate a 4 second clip of waves crashing on black sand?",
                 "Sure, rendering a 4-second clip.", "GENERATE_VIDEO"),
    ],
    validate=_can_generate,
    handler=_generate,
)

QUOTE_VIDEO = Action(
    name="QUOTE_VIDEO",
    description="Tell the price of a video before buying it. Signs and pays nothing.",
    similes=["PRICE_VIDEO", "VIDEO_COST", "ESTIMATE_VIDEO"],
    examples=[_example("How much would a 10 second video of a city at night cost?",
                       "Let me get a quote.", "QUOTE_VIDEO")],
    validate=_can_quote,
    handler=_quote,
)

VIDEO_STATUS = Action(
    name="VIDEO_STATUS",
    description="Check a video job by task id (or the newest pending one) and deliver it when it is done.",
    similes=["CHECK_VIDEO", "VIDEO_PROGRESS", "IS_MY_VIDEO_READY"],
    examples=[_example("Is my video ready yet?", "Checking on it.", "VIDEO_STATUS")],
    validate=_can_check,
    handler=_check,
)


# ---------------------------------------------------------------------------------------- providers


async def _budget(runtime: Any, message: Any = None, state: Any = None) -> dict[str, Any]:
    found = _video_service(runtime)
    if found is None:
        return {"text": "", "values": {}, "data": {}}
    service = found.service
    report = await service.abudget()
    now = await asyncio.to_thread(service.wallet.remaining)
    t, left = report.totals, _left(report)
    frozen = " Payments are FROZEN (kill switch)." if t.frozen else ""
    window = f"{_usdc(left)} left in the budget" if left is not None else "no overall cap"
    text = (f"Imagine video budget: spent {_usdc(t.spent)}, {window}, up to {_usdc(now)} for the next video."
            f"{frozen} Prices come from a quote; the operator sets the caps.")
    return {"text": text,
            "values": {"imagineNextVideoMax": format_usdc(now, unit=False), "imagineFrozen": t.frozen,
                       "imagineSandbox": service.is_sandbox},
            "data": report.to_json()}


async def _pending(runtime: Any, message: Any = None, state: Any = None) -> dict[str, Any]:
    found = _video_service(runtime)
    if found is None:
        return {"text": "", "values": {}, "data": {}}
    tasks = await asyncio.to_thread(found.service.pending)
    pending = [{"taskId": t.task_id, "prompt": t.prompt, "status": t.status, "progress": t.progress}
               for t in tasks]
    lines = [f'- {p["taskId"]}: "{p["prompt"]}" {p["status"]}'
             + (f" {int(p['progress'])}%" if p["progress"] is not None else "") for p in pending]
    lines += [f'- delivered {d["taskId"]}: "{d["prompt"]}" {d["videoUrl"] or d["videoPath"]}'
              for d in found.delivered[-5:]]
    text = ("Imagine videos:\n" + "\n".join(lines)) if lines else "No Imagine videos in progress."
    return {"text": text,
            "values": {"imaginePendingCount": len(pending), "imagineDeliveredCount": len(found.delivered)},
            "data": {"pending": pending, "delivered": found.delivered[-20:]}}


IMAGINE_BUDGET = Provider(
    name="IMAGINE_BUDGET",
    description="What the agent may still spend on videos, and whether payments are frozen.",
    get=_budget,
)

IMAGINE_PENDING_VIDEOS = Provider(
    name="IMAGINE_PENDING_VIDEOS",
    description="Video jobs paid for but not finished, and videos recently delivered.",
    get=_pending,
    dynamic=True,
)


# ---------------------------------------------------------------------------------------- evaluator


async def _has_unrecorded(runtime: Any, message: Any = None, state: Any = None) -> bool:
    found = _video_service(runtime)
    return found is not None and bool(found.unrecorded)


async def _record(runtime: Any, message: Any = None, state: Any = None, options: Any = None,
                  callback: Callback | None = None, responses: Any = None) -> dict[str, Any]:
    """Move delivered videos into the agent's memory (the host cache when it has one)."""
    found = _require_service(runtime)
    records, found.unrecorded = found.unrecorded, []
    set_cache = getattr(runtime, "set_cache", None)
    for record in records:
        if callable(set_cache):
            await set_cache(f"imagine/videos/{record['taskId']}", record)
        found.delivered.append(record)
    text = f"Recorded {len(records)} delivered video(s)."
    return {"success": True, "text": text, "values": {"recorded": len(records)}, "data": {"videos": records}}


RECORD_DELIVERY = Evaluator(
    name="IMAGINE_RECORD_DELIVERY",
    description="Records each video delivered to the user, so the agent remembers what it made and paid for.",
    similes=["REMEMBER_VIDEO", "LOG_VIDEO_DELIVERY"],
    examples=[{
        "prompt": "The agent just delivered a generated video.",
        "messages": [{"name": "{{agentName}}", "content": {"text": "Your video is ready: https://…/v.mp4",
                                                            "actions": ["GENERATE_VIDEO"]}}],
        "outcome": "The video's task id, prompt, link and payment are recorded.",
    }],
    validate=_has_unrecorded,
    handler=_record,
)


# ------------------------------------------------------------------------------------------- plugin


async def _init(config: Mapping[str, Any], runtime: Any) -> None:
    """Fail early on settings that cannot work; say loudly when it is the no-money sandbox."""
    settings = settings_from_runtime(runtime, config)
    logger = getattr(runtime, "logger", None)
    if settings.base_url is None and logger is not None:
        logger.warning("imagine plugin: no IMAGINE_BASE_URL, using the embedded sandbox; no real money moves")


imagine_plugin = Plugin(
    name="imagine",
    description="Buy AI videos from the Imagine API with x402 (USDC on Base) under an operator budget.",
    init=_init,
    config={key: None for key in CONFIG_KEYS},
    services=[ImagineVideoService],
    actions=[GENERATE_VIDEO, QUOTE_VIDEO, VIDEO_STATUS],
    providers=[IMAGINE_BUDGET, IMAGINE_PENDING_VIDEOS],
    evaluators=[RECORD_DELIVERY],
)


# ------------------------------------------------------------------------------------- elizaos adapter


def elizaos_plugin(plugin: Plugin = imagine_plugin) -> Any:
    """The plugin as an ``elizaos.types.Plugin`` (``pip install elizaos``; verified with 2.0.0a5).

    Handlers get ElizaOS's protobuf ``Memory``/``State`` as they are; replies go to the callback as
    ``Content``; results come back as ``ActionResult``/``ProviderResult``.
    """
    from elizaos.types import Action as ElizaAction
    from elizaos.types import ActionExample, ActionResult, EvaluationExample, ProviderResult
    from elizaos.types import Content as ElizaContent
    from elizaos.types import Evaluator as ElizaEvaluator
    from elizaos.types import Plugin as ElizaPlugin
    from elizaos.types import Provider as ElizaProvider
    from elizaos.types import Service as ElizaService

    def to_content(content: Content) -> Any:
        return ElizaContent(**{k: v for k, v in content.items() if v is not None})

    def to_callback(callback: Any) -> Callback | None:
        if callback is None:
            return None

        async def send(content: Content) -> Any:
            return await callback(to_content(content))

        return send

    def to_result(result: dict[str, Any]) -> Any:
        return ActionResult(**{k: _json_safe(v) for k, v in result.items() if v is not None})

    def handler_of(handler: Handler) -> Any:
        async def run(runtime: Any, message: Any, state: Any = None, options: Any = None,
                      callback: Any = None, responses: Any = None) -> Any:
            return to_result(await handler(runtime, message, state, options, to_callback(callback), responses))

        return run

    def provider_of(get: Callable[[Any, Any, Any], Awaitable[dict[str, Any]]]) -> Any:
        async def run(runtime: Any, message: Any, state: Any = None) -> Any:
            result = await get(runtime, message, state)
            return ProviderResult(text=result["text"], values=_json_safe(result["values"]),
                                  data=_json_safe(result["data"]))

        return run

    def examples_of(rows: list[list[dict[str, Any]]]) -> list[list[Any]]:
        return [[ActionExample(name=m["name"], content=m["content"]) for m in row] for row in rows]

    service_class = type("ImagineVideoElizaService", (ImagineVideoService, ElizaService), {})
    return ElizaPlugin(
        name=plugin.name,
        description=plugin.description,
        init=plugin.init,
        config=dict(plugin.config),
        services=[service_class],
        actions=[ElizaAction(name=a.name, description=a.description, similes=a.similes, validate=a.validate,
                             handler=handler_of(a.handler), examples=examples_of(a.examples))
                 for a in plugin.actions],
        providers=[ElizaProvider(name=p.name, description=p.description, get=provider_of(p.get), dynamic=p.dynamic)
                   for p in plugin.providers],
        evaluators=[ElizaEvaluator(name=e.name, description=e.description, similes=e.similes,
                                   validate=e.validate, handler=handler_of(e.handler), always_run=e.always_run,
                                   examples=[EvaluationExample(prompt=x["prompt"], outcome=x["outcome"],
                                                               messages=[ActionExample(**m) for m in x["messages"]])
                                             for x in e.examples])
                    for e in plugin.evaluators],
    )


def _json_safe(value: Any) -> Any:
    """Protobuf ``Struct`` holds only JSON: paths become strings, ints stay numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Path | Decimal):
        return str(value)
    return str(value)


def _is_elizaos_runtime(runtime: Any) -> bool:
    try:
        from elizaos.types.runtime import IAgentRuntime
    except ImportError:
        return False
    return isinstance(runtime, IAgentRuntime)


async def register(runtime: Any) -> None:
    """Register into a host: the ``elizaos`` adapter for an elizaos runtime, the plain plugin otherwise."""
    await runtime.register_plugin(elizaos_plugin() if _is_elizaos_runtime(runtime) else imagine_plugin)
