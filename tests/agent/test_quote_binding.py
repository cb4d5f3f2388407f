"""Issue 11 rule 8: the price the model was quoted is the most the generate tool pays in the same run."""

from __future__ import annotations

import json

from langchain_core.messages import ToolCall

from imagine_agent.tools import GenerateVideoTool, ImagineContext, QuoteVideoTool

VIDEO = {"prompt": "A heron lifting off a misty lake, slow motion.", "duration": 2}


def call(tool: GenerateVideoTool, call_id: str) -> tuple[str | None, dict[str, object]]:
    message = tool.invoke(ToolCall(name=tool.name, args=VIDEO, id=call_id, type="tool_call"))
    return message.status, json.loads(message.content)


def test_a_price_rise_after_quote_video_is_refused_by_generate_video(context: ImagineContext) -> None:
    service = context.service
    quoted = json.loads(QuoteVideoTool(context=context).invoke(VIDEO))
    service.sandbox.state.raise_price(50_000)
    status, reply = call(GenerateVideoTool(context=context), "g1")
    assert status == "error" and reply["error"] == "PriceChangedError" and reply["paid"] is False
    assert service.receipts() == []
    requote = json.loads(QuoteVideoTool(context=context).invoke(VIDEO))
    assert requote["price"] != quoted["price"]
    status, reply = call(GenerateVideoTool(context=context), "g2")
    (record,) = service.receipts()
    assert str(record.amount) == requote["price"]  # signed what the model was last quoted
    assert requote["price"] in json.dumps(reply)  # and the tool's answer states the amount actually signed
