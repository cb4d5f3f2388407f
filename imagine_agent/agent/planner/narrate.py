"""The planner's narration: the format of ``prompts/narrate.md`` filled from tool results, and its fixed lines."""

from __future__ import annotations

from typing import Any

from ...money import usdc_text
from .intent import VideoAsk

PLANNER_LABEL = "(Offline planner: rule-based, not an LLM.)"


def _line(label: str, value: Any) -> str | None:
    return f"{label}: {value}" if value not in (None, "", {}) else None


def _budget_line(left: dict[str, Any] | None) -> str | None:
    """The one budget vocabulary: left today, left in total, largest next payment."""
    if not left:
        return None
    parts = [f"left today {usdc_text(left, 'today')}"] if left.get("today") else []
    parts += [f"left in total {usdc_text(left, 'total')}"] if left.get("total") else []
    parts.append(f"largest next payment {usdc_text(left, 'nextCall')}")
    return "Budget: " + ", ".join(parts) + "."


def _narrate_video(
    ask: VideoAsk | None, result: dict[str, Any], ok: bool, quote: dict[str, Any] | None = None
) -> list[str]:
    """The narration format of ``prompts/narrate.md``, filled from a generate/wait tool result."""
    request = result.get("request") or {}
    seconds = request.get("duration") or (ask.duration if ask and ask.duration else 8)
    subject = ask.subject if ask else "your video"
    paid = result.get("paid")
    status = result.get("status")
    lines: list[str | None] = []
    if not ok:
        if result.get("taskId"):
            lines.append(f"The generation failed: {result.get('message', 'no reason given')}")
            lines.append(_line("Paid", _paid_text(paid)) if paid else "Nothing was paid.")
            lines.append("The payment stays recorded; a retry would be a new payment, so I did not retry.")
        elif str(result.get("message", "")).startswith("User rejected"):
            why = str(result["message"]).partition("with reason: ")[2]
            lines.append(
                "Not paid: the payment needed a human's approval and was declined"
                + (f" ({why.rstrip('.')})" if why else "")
                + ". Nothing was signed or paid."
            )
            if quote and quote.get("price"):
                lines.append(
                    f"Price asked: {usdc_text(quote, 'price')}. Approve it next time, or ask for a shorter video."
                )
        else:
            lines.append(f"I did not pay for this video: {result.get('message', 'the request was refused')}")
            if result.get("paid") is False:
                lines.append("Nothing was signed or paid.")
        lines.append(_line("Task", result.get("taskId")))
        return [line for line in lines if line]
    if status == "still_running":
        lines.append(f"Paid and started: your {seconds:g}-second video of {subject} is still being made.")
        lines.append(f"Collect it later with `imagine-agent wait {result.get('taskId')}` (or ask me to wait).")
    else:
        lines.append(f"Your {seconds:g}-second video of {subject} is ready.")
        video = result.get("videoPath")
        url = result.get("videoUrl")
        lines.append(_line("Video", f"{video} ({url})" if video and url else video or url))
        lines.append(_line("Preview", result.get("previewPath") or result.get("previewUrl")))
        lines.append(_line("Media page", result.get("mediaUrl")))
        if result.get("downloadError"):
            lines.append(f"Download problem: {result['downloadError']}")
    if request.get("prompt"):
        enhanced = " (the server was asked to enhance it)" if request.get("autoEnhance") else ""
        lines.append(f'Prompt sent{enhanced}: "{request["prompt"]}"')
    if result.get("newPayment") is False:
        lines.append("Paid: nothing new — this exact request was already paid for, so I followed that job.")
    else:
        lines.append(_line("Paid", _paid_text(paid)))
    lines.append(_budget_line(result.get("budgetLeft")))
    lines += [f"Budget warning: {warning}." for warning in result.get("budgetWarnings") or ()]
    coin = result.get("coin")
    if coin and coin.get("address"):
        symbol = f"${coin['symbol']} " if coin.get("symbol") else ""
        lines.append(
            f"Coin: {symbol}{coin['address']} on {coin.get('chain') or 'its chain'}. "
            + (
                "The token existed before this video (attached, not deployed for it)."
                if coin.get("external")
                else f"The paying wallet {coin.get('creator')} is the coin's creator and earns its trading fees."
            )
        )
    elif coin:
        lines.append(
            f"Coin: autoClank was sent, so a Clanker coin is deployed for this video. The paying wallet "
            f"{coin.get('creator')} is the coin's creator and earns its trading fees."
        )
    elif request.get("autoClankNote"):
        lines.append(f"Coin: {request['autoClankNote']}.")
    lines.append(_line("Task", result.get("taskId")))
    if result.get("sandbox"):
        lines.append("Sandbox: no real money moved.")
    return [line for line in lines if line]


def _paid_text(paid: Any) -> str | None:
    if not isinstance(paid, dict):
        return None
    if paid.get("paidBy") == "credits":
        return "from the provider's credits (0 USDC, no budget used)"
    tx = paid.get("transaction") or "no receipt sent"
    return f"{usdc_text(paid)} on {paid.get('network')} to {paid.get('payTo')}, transaction {tx}"


def _narrate_refusal(ask: VideoAsk | None, quote: dict[str, Any]) -> list[str]:
    lines = [f"I did not pay for this video: {quote.get('refusal') or quote.get('message') or 'it was refused'}"]
    if quote.get("price"):
        seconds = (quote.get("request") or {}).get("duration") or 8
        lines.append(
            f"Price: {usdc_text(quote, 'price')} for {seconds:g} seconds; the largest next payment "
            f"the budget allows is {usdc_text(quote, 'budgetLeftNextCall')}."
        )
    lines.append(
        "Nothing was signed or paid. A shorter video costs less; only the operator can raise a cap "
        "(for example IMAGINE_MAX_PER_CALL) — I cannot."
    )
    return lines


def _narrate_quote(ask: VideoAsk, quote: dict[str, Any]) -> list[str]:
    seconds = (quote.get("request") or {}).get("duration") or ask.duration or 8
    lines = [f"A {seconds:g}-second video of {ask.subject} costs {usdc_text(quote, 'price')} (quoted by the server)."]
    if quote.get("allowed"):
        lines.append(
            f"The budget allows it (largest next payment {usdc_text(quote, 'budgetLeftNextCall')}). "
            "Say the word and I will make it."
        )
    else:
        lines.append(f"The budget would not allow it: {quote.get('refusal')}")
    lines.append("I only asked the price: nothing was signed or paid.")
    return lines


def _narrate_budget(body: dict[str, Any]) -> list[str]:
    left = body.get("left") or {}
    caps = body.get("caps") or {}
    return [
        f"Wallet {body.get('wallet')}: spent {usdc_text(body, 'spent')}, reserved {usdc_text(body, 'reserved')}, "
        f"unknown {usdc_text(body, 'unknown')}.",
        f"Left today {usdc_text(left, 'today', 'unlimited (no daily cap)')}, left in total "
        f"{usdc_text(left, 'total', 'unlimited (no total cap)')}, largest next payment {usdc_text(left, 'nextCall')}.",
        f"Caps (set by the operator): {usdc_text(caps, 'perCall')} per call, {usdc_text(caps, 'daily')} a day, "
        f"{usdc_text(caps, 'total')} in total; payments over {usdc_text(body, 'approvalThreshold')} need a human's "
        "approval.",
        f"autoClank policy: {body.get('autoClankPolicy')}.",
    ]


HELP = (
    "I make short AI videos and pay for them from the operator's wallet, within its budget. Try: "
    '"make me an 8-second video of a corgi surfing at sunset", "animate https://example.com/cat.png", '
    '"remix <video id> in anime style", "... and coin it", "what is my budget?", or "status <task id>".'
)


UNCLEAR = (
    "I didn't understand that. I am a rule-based planner and read requests in English only. I can: make a video "
    '("make an 8-second video of a corgi surfing at sunset"), tell its price first ("how much is a 4-second video '
    'of rain?"), animate an image ("animate https://example.com/cat.png"), remix a video ("remix <video id> in '
    'anime style"), show the budget ("what is my budget?") or check a video ("status <task id>").'
)
NOTHING_TO_CONFIRM = (
    "There is nothing waiting for a yes: I have not quoted a video in my last answer. Describe the video you want "
    '(for example "make an 8-second video of a corgi surfing at sunset") and I will quote it, then buy it.'
)


def _narrate_coin_refused(quote: dict[str, Any]) -> list[str]:
    note = (quote.get("request") or {}).get("autoClankNote") or "the operator's autoClank policy does not allow it"
    return [
        f"I can't deploy a coin for this video: {note}.",
        f"Nothing was signed or paid. Without the coin it costs {usdc_text(quote, 'price')}. "
        'Shall I make it without the coin? Say "yes" to go ahead, or ask for something else.',
    ]


def _report_fields(text: str, facts: dict[str, Any]) -> dict[str, Any]:
    paid = facts.get("paid")
    return {
        "reply": text,
        "task_id": facts.get("taskId"),
        "status": facts.get("status") or ("failed" if facts.get("error") else None),
        "video_path": facts.get("videoPath"),
        "video_url": facts.get("videoUrl"),
        "preview_url": facts.get("previewUrl"),
        "paid": _paid_text(paid) if isinstance(paid, dict) else None,
        "transaction": paid.get("transaction") if isinstance(paid, dict) else None,
        "coin_creator": (facts.get("coin") or {}).get("creator"),
    }
