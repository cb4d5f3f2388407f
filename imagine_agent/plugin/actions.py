"""The actions: reading a message (and the model's parameters), paying through the service, narrating."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

from ..agent.planner.intent import parse_duration
from ..config import Settings
from ..decisions import CoinDecision, decide_coin
from ..errors import AwaitingApprovalError, ImagineError
from ..limits import MAX_DURATION, MAX_PROMPT_CHARS, MIN_DURATION
from ..models import TaskStatus
from ..money import format_usdc, usdc_fields
from ..results import coin_line, delivery_facts
from ..service import BudgetReport, GenerationOutcome, QuoteResult
from .shapes import Action, Callback, Content, Parameter
from .video_service import ImagineVideoService, _require_service, _video_service

__all__ = ["GENERATE_VIDEO", "QUOTE_VIDEO", "VIDEO_PARAMETERS", "VIDEO_STATUS"]

log = logging.getLogger("imagine_agent.plugin")


_VIDEO_WORDS = re.compile(r"\b(videos?|clips?|films?|movies?|animat\w*)\b", re.I)
_PRICE_WORDS = re.compile(r"\b(price|prices|cost|costs|quote|how much)\b", re.I)
_MAKE_WORDS = re.compile(r"\b(make|generate|create|render|produce|film|shoot|animate|imagine)\b", re.I)
_STATUS_WORDS = re.compile(r"\b(status|progress|ready|done|finished|how is|how's)\b", re.I)
_TASK_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
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


def _as_dict(value: Any) -> Any:
    """A protobuf message (ElizaOS ``Content.data`` is a ``Struct``) as plain JSON values; others unchanged."""
    if hasattr(value, "DESCRIPTOR"):
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(value)
    return value


def _model_params(responses: Any, *actions: str) -> dict[str, Any]:
    """The parameters the model chose for ``action``, from its responses.

    In elizaos 2.0.0a5's single-shot path they arrive in ``responses[].content.data["params"]`` as
    ``{ACTION: [{...}]}``; ``options.parameters`` then carries only empty values.
    """
    for response in responses or []:
        content = response.get("content") if isinstance(response, Mapping) else getattr(response, "content", None)
        data = _as_dict(content.get("data") if isinstance(content, Mapping) else getattr(content, "data", None))
        params = data.get("params") if isinstance(data, Mapping) else None
        if not isinstance(params, Mapping):
            continue
        chosen = next((params[k] for a in actions for k in params if str(k).upper() == a), None)
        if isinstance(chosen, list):
            chosen = next((c for c in chosen if isinstance(c, Mapping)), None)
        if isinstance(chosen, Mapping):
            return {str(k): v for k, v in chosen.items() if v not in (None, "")}
    return {}


def _plain(value: Any) -> Any:
    """A protobuf ``Value`` (what elizaos fills declared parameters with) as plain JSON; an empty one is None."""
    if hasattr(value, "DESCRIPTOR"):
        import json

        from google.protobuf.json_format import MessageToJson

        return json.loads(MessageToJson(value))
    return value


def _chosen(options: Any, responses: Any, *actions: str) -> dict[str, Any]:
    """The model's parameters for this call: non-empty action options first, then its responses' params."""
    opts = {k: plain for k, v in _options(options).items() if (plain := _plain(v)) not in (None, "", {}, [])}
    return {**_model_params(responses, *actions), **opts}


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
    return parse_duration(text)


def _wants_coin(options: Mapping[str, Any]) -> bool:
    return any(options.get(k) in (True, "true", "True") for k in ("autoClank", "auto_clank"))


def _coin(settings: Settings, options: Mapping[str, Any]) -> CoinDecision:
    """The decision (rule 6, ``decisions.decide_coin``) on the coin the request asks for: under ``ask`` a person
    must still approve it before anything is paid (see ``_coin_approved``)."""
    return decide_coin(settings.auto_clank, _wants_coin(options), assume_approved=True)


def _auto_clank(settings: Settings, options: Mapping[str, Any]) -> bool:
    """Whether autoClank is sent for this request, as the operator's policy decides."""
    return _coin(settings, options).send


def _video_model(options: Mapping[str, Any]) -> str | None:
    """The model the action was asked for (``videoModel``/``model``), any the server lists; None: its default.

    A model the server's 402 does not list is refused by the client before anything is signed.
    """
    for key in ("videoModel", "video_model", "model"):
        value = options.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _model_refusal(options: Mapping[str, Any]) -> str | None:
    """A model parameter that is not a name at all (the client checks names against the server's list)."""
    for key in ("videoModel", "video_model", "model"):
        value = options.get(key)
        if value is not None and not isinstance(value, str):
            return f"the video model must be a name the server lists, not {type(value).__name__}. Nothing was paid."
    return None


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
        **usdc_fields(outcome.payment.amount if outcome.payment else None),
        "transaction": outcome.payment.transaction if outcome.payment else None,
        **delivery_facts(status, outcome.payment.payer if outcome.payment else None),
    }


def _left(report: BudgetReport) -> str:
    """The one budget vocabulary (left today, left in total, largest next payment), in this module's USDC."""

    def fmt(v: int | None) -> str:
        return "unlimited" if v is None else _usdc(v)

    return (
        f"left today {fmt(report.left_today)}, left in total {fmt(report.left_in_total)}, "
        f"largest next payment {_usdc(report.largest_next_payment)}"
    )


def _narrate(outcome: GenerationOutcome, left: str | None, auto_clank: bool, payer: str) -> str:
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
        lines.append(f"Budget: {left}.")
    if auto_clank:
        lines.append(
            f"A Clanker coin was deployed for it; the paying wallet {payer} is its creator and earns its trading fees."
        )
    if outcome.sandbox:
        lines.append("(Sandbox: no real money moved.)")
    return "\n".join(lines)


def _content(text: str, action: str, **extra: Any) -> Content:
    return {"text": text, "actions": [action], "source": "imagine", **extra}


def _attachment(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": record["taskId"],
        "url": record["videoUrl"] or record["videoPath"] or "",
        "title": "Imagine video",
        "source": "imagine",
        "description": record["prompt"],
        "content_type": "video/mp4",
    }


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
        await _say(
            self.callback, _content(text, self.action, data={"status": status.status, "progress": status.progress})
        )


# ------------------------------------------------------------------------------------------ actions


async def _can_generate(runtime: Any, message: Any, state: Any = None) -> bool:
    text = _text(message)
    return (
        _video_service(runtime) is not None
        and bool(_VIDEO_WORDS.search(text) and _MAKE_WORDS.search(text))
        and not _PRICE_WORDS.search(text)
    )


async def _coin_approved(video: ImagineVideoService, prompt: str, quote: QuoteResult, coin: CoinDecision) -> bool:
    """Under ``IMAGINE_AUTO_CLANK=ask`` a person approves each coin through the operator's ``IMAGINE_APPROVER``
    callback (the service asks it and audits the answer); on a no there is no coin and nothing is paid.
    (Without a callback the approvals queue decides.)"""
    description = f"deploy a Clanker coin for the video {prompt[:80]!r}; the paying wallet becomes its creator"
    return bool(
        await asyncio.to_thread(
            video.service.ask_approver, quote.quote, reasons=(coin.question or "",), description=description
        )
    )


def _refused(name: str, text: str, **data: Any) -> dict[str, Any]:
    return {
        "success": False,
        "text": text,
        "error": text,
        "values": {"success": False, "paid": False},
        "data": {"actionName": name, **data},
    }


async def _generate(
    runtime: Any,
    message: Any,
    state: Any = None,
    options: Any = None,
    callback: Callback | None = None,
    responses: Any = None,
) -> dict[str, Any]:
    """Quote, pay once (the service attaches to an already-paid identical request), wait, download, narrate.

    The runtime may call this action whatever its ``validate`` says (elizaos caches state per room), so
    the message is checked again here: chit-chat and price questions never pay.
    """
    name = "GENERATE_VIDEO"
    try:
        video = _require_service(runtime)
        service = video.service
        text = _text(message)
        opts = _chosen(options, responses, name)
        if _PRICE_WORDS.search(text):  # "how much would …": answer the price, never buy
            return await _quote(runtime, message, state, options, callback, responses)
        if not (_VIDEO_WORDS.search(text) and _MAKE_WORDS.search(text)):
            reply = (
                'I only buy a video when you ask me to make one (for example: "make a 4 second video of '
                'waves at night"). Nothing was paid.'
            )
            await _say(callback, _content(reply, name))
            return _refused(name, reply, reason="the message does not ask for a video")
        if (refusal := _model_refusal(opts)) is not None:
            await _say(callback, _content(f"I can't buy that video: {refusal}", name))
            return _refused(name, refusal)
        prompt, duration = _prompt_of(text, opts), _duration_of(text, opts)
        coin = _coin(service.settings, opts)
        clank = coin.send
        model = _video_model(opts)
        quote = await service.aquote(prompt, duration=duration, auto_clank=clank, video_model=model)
        if not quote.allowed:
            refusal = f"I can't buy that video: {quote.refusal}. Nothing was paid."
            await _say(callback, _content(refusal, name))
            return _refused(name, refusal, quote=quote.to_json())
        if coin.needs_person and not service.approvals_queued and not await _coin_approved(video, prompt, quote, coin):
            # With the operator's callback it decides here; without one the service queues the coin.
            refusal = (
                "The operator's autoClank policy is 'ask' and no person approved a coin for this video, so I "
                "did not buy it. Nothing was paid. Ask again without a coin, or the operator approves coins "
                "through the IMAGINE_APPROVER callback."
            )
            await _say(callback, _content(refusal, name))
            return _refused(name, refusal, quote=quote.to_json())
        await _say(callback, _content(f'Buying a video of "{prompt}" for {_usdc(quote.quote.amount)}…', name))
        outcome: GenerationOutcome = await service.agenerate(
            prompt, duration=duration, auto_clank=clank, video_model=model, on_progress=_Progress(callback, name)
        )
        left = _left(await service.abudget())
        record = _delivery(outcome)
        video.deliver(record)
        narration = _narrate(outcome, left, clank, service.address)
        narration += "".join(f" Budget warning: {warning}." for warning in outcome.warnings)
        await _say(callback, _content(narration, name, attachments=[_attachment(record)]))
        return {
            "success": True,
            "text": narration,
            "values": {
                "success": True,
                "videoGenerated": True,
                "taskId": outcome.task_id,
                "videoUrl": record["videoUrl"],
            },
            "data": {"actionName": name, **outcome.to_json()},
        }
    except Exception as exc:  # every failure becomes a clear chat reply, never a traceback
        failure = _failure(name, exc)
        await _say(callback, _content(f"The video was not made: {failure['text']}", name))
        return failure


async def _can_quote(runtime: Any, message: Any, state: Any = None) -> bool:
    text = _text(message)
    return _video_service(runtime) is not None and bool(_VIDEO_WORDS.search(text)) and bool(_PRICE_WORDS.search(text))


async def _quote(
    runtime: Any,
    message: Any,
    state: Any = None,
    options: Any = None,
    callback: Callback | None = None,
    responses: Any = None,
) -> dict[str, Any]:
    """Ask the price; signs and pays nothing."""
    name = "QUOTE_VIDEO"
    try:
        service = _require_service(runtime).service
        opts, text = _chosen(options, responses, name, "GENERATE_VIDEO"), _text(message)
        prompt, duration = _prompt_of(text, opts), _duration_of(text, opts)
        result = await service.aquote(
            prompt, duration=duration, auto_clank=_auto_clank(service.settings, opts), video_model=_video_model(opts)
        )
        price = _usdc(result.quote.amount)
        verdict = "within my budget" if result.allowed else f"but I can't pay it: {result.refusal}"
        reply = f'A video of "{prompt}" costs {price}, {verdict}. I can spend up to {_usdc(result.remaining)} now.'
        await _say(callback, _content(reply, name))
        return {
            "success": True,
            "text": reply,
            "values": {"success": True, **usdc_fields(result.quote.amount, "price"), "allowed": result.allowed},
            "data": {"actionName": name, **result.to_json()},
        }
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


async def _check(
    runtime: Any,
    message: Any,
    state: Any = None,
    options: Any = None,
    callback: Callback | None = None,
    responses: Any = None,
) -> dict[str, Any]:
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
                return {
                    "success": True,
                    "text": reply,
                    "values": {"success": True, "pending": 0},
                    "data": {"actionName": name},
                }
            task_id = pending[0].task_id
        status = await service.astatus(task_id)
        extra: dict[str, Any] = {}
        if status.status == "completed":
            files = await asyncio.to_thread(service.download, task_id, None, status=status)
            task = await asyncio.to_thread(service.task_record, task_id)
            record = {
                "taskId": task_id,
                "prompt": task.prompt if task else "",
                "videoUrl": status.video_url,
                "previewUrl": status.preview_url,
                "videoPath": str(files.video),
                "amount": None,
                "amountUsdc": None,
                "transaction": None,
            }
            video.deliver(record)
            reply = f"Video {task_id} is ready: {status.video_url}\nSaved to {files.video}"
            extra["attachments"] = [_attachment(record)]
        elif status.status in ("queued", "processing"):
            reply = f"Video {task_id} is {status.status}" + (
                f", {int(status.progress)}% done." if status.progress is not None else "."
            )
        else:
            reply = f"Video {task_id} {status.status.replace('_', ' ')}."
        await _say(callback, _content(reply, name, **extra))
        return {
            "success": True,
            "text": reply,
            "values": {"success": True, "taskId": task_id, "status": status.status},
            "data": {"actionName": name, "taskId": task_id, **status.to_wire()},
        }
    except Exception as exc:
        failure = _failure(name, exc)
        await _say(callback, _content(f"I could not check that video: {failure['text']}", name))
        return failure


def _example(user: str, reply: str, action: str) -> list[dict[str, Any]]:
    return [
        {"name": "{{user1}}", "content": {"text": user}},
        {"name": "{{agentName}}", "content": {"text": reply, "actions": [action]}},
    ]


VIDEO_PARAMETERS = (
    Parameter(
        "prompt",
        "What the video shows: subject, action, setting, camera, lighting, style (plain text, "
        f"at most {MAX_PROMPT_CHARS} characters). Omit to use the user's own words.",
        "string",
    ),
    Parameter(
        "duration",
        f"Length in seconds, {MIN_DURATION}-{MAX_DURATION}, exactly as the user asked; omit for 8.",
        "number",
        minimum=MIN_DURATION,
        maximum=MAX_DURATION,
    ),
    Parameter(
        "model",
        "The video model, one the server lists (QUOTE_VIDEO names them). Omit it for the server's default.",
        "string",
    ),
    Parameter(
        "image", "An https:// URL of a starting image the user gave, for image-to-video. Omit otherwise.", "string"
    ),
    Parameter(
        "autoClank",
        "true only when the user asked for a coin (Clanker token) for the video; the operator's "
        "policy decides whether one is deployed.",
        "boolean",
    ),
)

GENERATE_VIDEO = Action(
    name="GENERATE_VIDEO",
    description="Make an AI video from a text prompt, paying the Imagine API per request in USDC "
    "(within the operator's budget), then deliver the file.",
    similes=["MAKE_VIDEO", "CREATE_VIDEO", "RENDER_VIDEO", "IMAGINE_VIDEO", "TEXT_TO_VIDEO"],
    examples=[
        _example(
            "Make a video of a fox running through snow at dawn", "On it — buying that video now.", "GENERATE_VIDEO"
        ),
        _example(
            "Can you generate a 4 second clip of waves crashing on black sand?",
            "Sure, rendering a 4-second clip.",
            "GENERATE_VIDEO",
        ),
    ],
    validate=_can_generate,
    handler=_generate,
    parameters=VIDEO_PARAMETERS,
)

QUOTE_VIDEO = Action(
    name="QUOTE_VIDEO",
    description="Tell the price of a video before buying it. Signs and pays nothing.",
    similes=["PRICE_VIDEO", "VIDEO_COST", "ESTIMATE_VIDEO"],
    examples=[
        _example("How much would a 10 second video of a city at night cost?", "Let me get a quote.", "QUOTE_VIDEO")
    ],
    validate=_can_quote,
    handler=_quote,
    parameters=VIDEO_PARAMETERS,
)

VIDEO_STATUS = Action(
    name="VIDEO_STATUS",
    description="Check a video job by task id (or the newest pending one) and deliver it when it is done.",
    similes=["CHECK_VIDEO", "VIDEO_PROGRESS", "IS_MY_VIDEO_READY"],
    examples=[_example("Is my video ready yet?", "Checking on it.", "VIDEO_STATUS")],
    validate=_can_check,
    handler=_check,
    parameters=(
        Parameter("taskId", "The task id of a video that was paid for; omit for the newest pending one.", "string"),
    ),
)
