"""Chat with the video agent in a terminal: LangChain ``create_agent`` + the Imagine tools.

    python examples/chat_agent.py "make a 4 second video of a paper boat on a stormy sea"
    echo "how much is an 8 second video of a lighthouse?" | python examples/chat_agent.py

One message when given as arguments, else one message per line of stdin. With no IMAGINE_BASE_URL it
runs on the embedded sandbox (no keys, no real money); with no IMAGINE_MODEL it uses the offline
planner (deterministic, not an LLM). Render progress goes to stderr, the agent's replies to stdout.
A payment over the approval threshold pauses the agent: it is approved at a terminal, declined otherwise.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.types import Command

from imagine_agent.agent import build_agent
from imagine_agent.service import SANDBOX_NOTICE, ImagineService
from imagine_agent.tools import PROGRESS_EVENT, ImagineContext


def approve(request: dict[str, Any]) -> list[dict[str, Any]]:
    """A human decides each paused payment; with no terminal to ask, it is declined."""
    decisions: list[dict[str, Any]] = []
    for action in request.get("action_requests", []):
        print(action.get("description", "Approve this payment?"), file=sys.stderr)
        yes = sys.stdin.isatty() and input("approve? [y/N] ").strip().lower() == "y"
        decisions.append({"type": "approve"} if yes else {"type": "reject", "message": "the user declined"})
    return decisions


def ask(agent: Any, context: ImagineContext, config: dict[str, Any], text: str) -> str:
    """Run one message to its end (through any approval pauses) and return the agent's reply."""
    payload: Any = {"messages": [{"role": "user", "content": text}]}
    while True:
        for event in agent.stream(payload, config, context=context, stream_mode="custom"):
            if isinstance(event, dict) and event.get("type") == PROGRESS_EVENT and event.get("stage") == "status":
                print(f"  {event['status']} {event.get('progress') or 0}%", file=sys.stderr)
        state = agent.get_state(config)
        if not state.interrupts:
            break
        payload = Command(resume={i.id: {"decisions": approve(i.value)} for i in state.interrupts})
    reply = next(m for m in reversed(state.values["messages"]) if isinstance(m, AIMessage) and not m.tool_calls)
    return str(reply.content)


def main(argv: list[str]) -> int:
    with ImagineService.create() as service:
        if service.is_sandbox:
            print(SANDBOX_NOTICE, file=sys.stderr)
        agent = build_agent(service=service)
        context = ImagineContext(service=service)
        config = {"configurable": {"thread_id": f"chat-{uuid.uuid4().hex}"}}
        messages = [" ".join(argv)] if argv else (line.strip() for line in sys.stdin)
        for text in messages:
            if text:
                print(ask(agent, context, config, text), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
