"""The providers (budget, pending videos) and the evaluator that records delivered videos."""

from __future__ import annotations

import asyncio
from typing import Any

from ..money import format_usdc
from .actions import _left, _usdc
from .shapes import Callback, Evaluator, Provider
from .video_service import _require_service, _video_service

__all__ = ["IMAGINE_BUDGET", "IMAGINE_PENDING_VIDEOS", "RECORD_DELIVERY"]


async def _budget(runtime: Any, message: Any = None, state: Any = None) -> dict[str, Any]:
    found = _video_service(runtime)
    if found is None:
        return {"text": "", "values": {}, "data": {}}
    service = found.service
    report = await service.abudget()  # the books facade, through the service
    t = report.totals
    frozen = " Payments are FROZEN (kill switch)." if t.frozen else ""
    books = "sandbox books (demo money)" if report.sandbox else "real books"
    text = (
        f"Imagine video budget: spent {_usdc(t.spent)} ({books}); {_left(report)}.{frozen} "
        "Prices come from a quote; the operator sets the caps."
    )
    if report.other is not None:
        text += f" Apart: {report.other.label}, spent {_usdc(report.other.spent)}."
    return {
        "text": text,
        "values": {
            "imagineNextVideoMax": format_usdc(report.largest_next_payment, unit=False),
            "imagineLargestNextPayment": format_usdc(report.largest_next_payment, unit=False),
            "imagineFrozen": t.frozen,
            "imagineSandbox": report.sandbox,
        },
        "data": report.to_json(),
    }


async def _pending(runtime: Any, message: Any = None, state: Any = None) -> dict[str, Any]:
    found = _video_service(runtime)
    if found is None:
        return {"text": "", "values": {}, "data": {}}
    tasks = await asyncio.to_thread(found.service.pending)
    pending = [{"taskId": t.task_id, "prompt": t.prompt, "status": t.status, "progress": t.progress} for t in tasks]
    lines = [
        f'- {p["taskId"]}: "{p["prompt"]}" {p["status"]}'
        + (f" {int(p['progress'])}%" if p["progress"] is not None else "")
        for p in pending
    ]
    lines += [
        f'- delivered {d["taskId"]}: "{d["prompt"]}" {d["videoUrl"] or d["videoPath"]}' for d in found.delivered[-5:]
    ]
    text = ("Imagine videos:\n" + "\n".join(lines)) if lines else "No Imagine videos in progress."
    return {
        "text": text,
        "values": {"imaginePendingCount": len(pending), "imagineDeliveredCount": len(found.delivered)},
        "data": {"pending": pending, "delivered": found.delivered[-20:]},
    }


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


async def _record(
    runtime: Any,
    message: Any = None,
    state: Any = None,
    options: Any = None,
    callback: Callback | None = None,
    responses: Any = None,
) -> dict[str, Any]:
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
    examples=[
        {
            "prompt": "The agent just delivered a generated video.",
            "messages": [
                {
                    "name": "{{agentName}}",
                    "content": {"text": "Your video is ready: https://…/v.mp4", "actions": ["GENERATE_VIDEO"]},
                }
            ],
            "outcome": "The video's task id, prompt, link and payment are recorded.",
        }
    ],
    validate=_has_unrecorded,
    handler=_record,
)
