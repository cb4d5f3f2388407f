"""``imagine-agent chat``: talk to the video agent, one message or an interactive session.

Progress (tool steps, the payment, a progress bar while the video renders) goes to stderr; the
agent's narration to stdout. A payment that needs approval is asked in the terminal; ``--yes``
approves it, and with no terminal (or with ``--json``) and no ``--yes`` it is declined. A coin under
``IMAGINE_AUTO_CLANK=ask`` is only ever approved by a person at the terminal, never by ``--yes``. ``--json``
prints one object per message: ``{"reply", "taskId", "paid", "videoPath", "modelCalls"}`` (and, when a refusal
stopped the purchase, ``"code"``: the refusal code, and ``"exitCode": 3``). A one-message chat exits 3 then, as
``generate`` would; an interactive session exits 0 when the user leaves.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from rich.markup import escape

from ..errors import REFUSAL_CODES, ConfigurationError, ImagineError
from ..money import usdc_text
from ..tools import PROGRESS_EVENT, ImagineContext, parse_tool_result
from .agent import build_agent

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ..service import ImagineService

__all__ = ["ChatSession", "Turn", "run_chat"]

RESULT_TOOLS = ("generate_video", "wait_for_video")
REFUSED_EXIT = 3  # the CLI's "refused by policy or budget, nothing signed" (errors.exit_code_for)
STEPS = {
    "quote_video": "asking the price",
    "budget_status": "checking the budget",
    "generate_video": "paying and generating",
    "wait_for_video": "waiting for the video",
    "video_status": "checking the status",
}


@dataclass
class Turn:
    """One message and everything the agent did for it."""

    reply: str = ""
    model_calls: int = 0
    tool_results: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    declined: bool = False  # a payment or a coin was declined at the approval prompt (or for want of one)

    def result(self) -> dict[str, Any]:
        """The last video result of this turn (generate or wait), or an empty dict."""
        return next((body for name, body in reversed(self.tool_results) if name in RESULT_TOOLS), {})

    def refusal(self) -> str | None:
        """The refusal code that stopped this turn's purchase; None when a video was bought (or followed) or
        nothing refused (a question, a status check)."""
        if self.result().get("taskId"):
            return None
        for _name, body in reversed(self.tool_results):
            code = body.get("code") or body.get("refusalCode")
            if isinstance(code, str) and code in REFUSAL_CODES:
                return code
            if body.get("error") == "Refused":  # the tool's own plan refused it (e.g. a coin under 'ask')
                return "policy"
        return "approval_denied" if self.declined else None

    def to_json(self) -> dict[str, Any]:
        result = self.result()
        paid = result.get("paid")
        out = {
            "reply": self.reply,
            "taskId": result.get("taskId"),
            "paid": paid if isinstance(paid, dict) else None,
            "videoPath": result.get("videoPath"),
            "modelCalls": self.model_calls,
        }
        refusal = self.refusal()
        if refusal is not None:
            out.update(code=refusal, exitCode=REFUSED_EXIT)
        return out


def _body(message: ToolMessage) -> dict[str, Any]:
    return parse_tool_result(message.content) or {"message": str(message.content)}


class _ProgressView:
    """Tool steps and a rich progress bar on stderr (silent with --json)."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def step(self, message: AIMessage) -> None:
        if self.console is None:
            return
        for call in message.tool_calls:
            what = STEPS.get(call["name"], call["name"])
            seconds = call["args"].get("duration")
            extra = f" ({seconds:g} s)" if isinstance(seconds, int | float) else ""
            self.console.print(f"[dim]→ {call['name']}: {what}{extra}[/]")

    def event(self, event: Any) -> None:
        if self.console is None or not isinstance(event, dict) or event.get("type") != PROGRESS_EVENT:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        if event.get("stage") == "paid":
            paid = event.get("paid")
            if event.get("attached"):
                self.console.print(
                    f"[yellow]already paid for this exact request; following task {escape(str(event['taskId']))}[/]"
                )
            elif isinstance(paid, dict):
                self.console.print(
                    f"[green]paid {usdc_text(paid)} on {escape(str(paid['network']))}[/] "
                    f"(tx {escape(str(paid.get('transaction') or 'pending'))}), "
                    f"task {escape(str(event['taskId']))}"
                )
        if event.get("stage") == "status":
            if self.bar is None:
                self.bar = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(),
                    console=self.console,
                )
                self.bar.start()
                self.task = self.bar.add_task("queued", total=100)
            assert self.task is not None
            self.bar.update(
                self.task, completed=event.get("progress") or 0, description=escape(str(event.get("status")))
            )
        if event.get("stage") == "downloaded":
            self.stop()
            if event.get("videoPath"):
                self.console.print(f"[dim]downloaded {escape(str(event['videoPath']))}[/]")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class ChatSession:
    """A conversation with the agent on one thread, answering its approval requests in the terminal."""

    def __init__(
        self,
        service: ImagineService,
        *,
        yes: bool = False,
        as_json: bool = False,
        interactive: bool | None = None,
        agent: Any = None,
    ) -> None:
        self.service = service
        self.yes = yes
        self.as_json = as_json
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.agent: Any = agent if agent is not None else build_agent(service=service)
        self.context = ImagineContext(service=service)
        if self.context.policy not in ("never", "ask", "agent", "always"):
            raise ConfigurationError(f"--auto-clank must be never, ask, agent or always, not {self.context.policy!r}")
        self.config: RunnableConfig = {"configurable": {"thread_id": f"chat-{uuid.uuid4().hex}"}}
        self.stderr: Console | None = None
        if not as_json:
            from rich.console import Console

            self.stderr = Console(stderr=True, soft_wrap=True)

    def send(self, text: str) -> Turn:
        """Run one user message to its end, pausing for approvals; returns what happened."""
        from langgraph.types import Command

        turn = Turn()
        view = _ProgressView(self.stderr)
        payload: Any = {"messages": [{"role": "user", "content": text}]}
        try:
            while True:
                interrupts: list[Any] = []
                for mode, chunk in self.agent.stream(
                    payload, self.config, context=self.context, stream_mode=["updates", "custom"]
                ):
                    if mode == "custom":
                        view.event(chunk)
                        continue
                    for node, update in chunk.items():
                        if node == "__interrupt__":
                            interrupts.extend(update)
                        elif isinstance(update, dict):
                            self._collect(node, update.get("messages") or [], turn, view)
                view.stop()
                if not interrupts:
                    break
                decided = {i.id: {"decisions": self._decide(i.value)} for i in interrupts}
                turn.declined = turn.declined or any(
                    d["type"] == "reject" for v in decided.values() for d in v["decisions"]
                )
                payload = Command(resume=decided)
        finally:
            view.stop()
        messages = self.agent.get_state(self.config).values.get("messages", [])
        final = next((m for m in reversed(messages) if isinstance(m, AIMessage) and not m.tool_calls), None)
        turn.reply = str(final.content) if final is not None else ""
        return turn

    def _collect(self, node: str, messages: list[BaseMessage], turn: Turn, view: _ProgressView) -> None:
        for message in messages:
            if node == "model" and isinstance(message, AIMessage):
                turn.model_calls += 1
                view.step(message)
            elif isinstance(message, ToolMessage) and message.name:
                turn.tool_results.append((message.name, _body(message)))

    def _decide(self, request: Any) -> list[dict[str, Any]]:
        """Answer a human-approval request: --yes approves; no terminal declines; else ask."""
        import typer

        decisions: list[dict[str, Any]] = []
        for action in request.get("action_requests", []):
            description = action.get("description") or f"Run {action.get('name')}?"
            wants = bool(action.get("args", {}).get("auto_clank"))
            coin = self.service.decide_coin(wants, policy=self.context.policy, assume_approved=True).needs_person
            if coin and not self.interactive:
                # Under 'ask' a person decides each coin; --yes approves prices, never a coin by itself.
                decisions.append(
                    {
                        "type": "reject",
                        "message": "the operator's autoClank policy is 'ask' and no one "
                        "was at a terminal to approve the coin; nothing was paid (ask again without a "
                        "coin, or run the chat in a terminal)",
                    }
                )
                if self.stderr is not None:
                    self.stderr.print(f"[red]{description}\ndeclined: a coin under 'ask' needs a person's yes[/]")
            elif self.yes and not coin:
                decisions.append({"type": "approve"})
                if self.stderr is not None:
                    self.stderr.print(f"[yellow]{description}\napproved by --yes[/]")
            elif self.as_json or not self.interactive:
                decisions.append(
                    {
                        "type": "reject",
                        "message": "no one was at a terminal to approve this payment; "
                        "it was declined (run again with --yes to approve it)",
                    }
                )
                if self.stderr is not None:
                    self.stderr.print(f"[red]{description}\ndeclined: no terminal to ask (use --yes)[/]")
            elif typer.confirm(f"{description}\nApprove?", default=False, err=True):
                decisions.append({"type": "approve"})
            elif action.get("args", {}).get("auto_clank") and typer.confirm(
                "Make the video without the coin instead?", default=False, err=True
            ):
                args = {**action["args"], "auto_clank": False}
                decisions.append({"type": "edit", "edited_action": {"name": action["name"], "args": args}})
            else:
                decisions.append({"type": "reject", "message": "the user declined the payment"})
            if decisions[-1]["type"] == "reject":  # every decision is audited; a yes is recorded when it pays
                self.service.audit_decision(False, str(description)[:200], "chat (langchain hitl)")
        return decisions

    def show(self, turn: Turn) -> None:
        if self.as_json:
            body = {**turn.to_json(), "sandbox": self.service.is_sandbox}
            sys.stdout.write(json.dumps(body, separators=(",", ":"), default=str) + "\n")
        else:
            sys.stdout.write(turn.reply.rstrip() + "\n")
        sys.stdout.flush()


def run_chat(service: ImagineService, message: str | None, *, yes: bool, as_json: bool) -> int:
    """One message (``message``), or an interactive session reading lines from stdin until EOF/"exit".

    Returns the exit code: 3 when a refusal stopped the one message's purchase, else 0. The caller prints
    the greeting first (the CLI does, before this module and LangChain are even imported)."""
    session = ChatSession(service, yes=yes, as_json=as_json)
    if message is not None:
        turn = _send(session, message)
        session.show(turn)
        refusal = turn.refusal()
        if refusal is None:
            return 0
        if session.stderr is not None:
            session.stderr.print(f"[red]nothing was bought: refused ({escape(refusal)}); exit {REFUSED_EXIT}[/]")
        return REFUSED_EXIT
    while True:
        if not as_json:
            sys.stderr.write("you> ")
            sys.stderr.flush()
        line = sys.stdin.readline()
        if not line or line.strip().lower() in ("exit", "quit", ":q"):
            return 0
        if line.strip():
            session.show(_send(session, line.strip()))


def _send(session: ChatSession, text: str) -> Turn:
    """Send, turning a model failure into a clean error (Imagine errors keep the CLI's exit codes)."""
    import typer

    try:
        return session.send(text)
    except ImagineError:
        raise
    except Exception as exc:
        if session.as_json:
            sys.stdout.write(
                json.dumps(
                    {
                        "error": type(exc).__name__,
                        "message": str(exc),
                        "exitCode": 1,
                        "code": "agent_failed",
                        "sandbox": session.service.is_sandbox,
                    }
                )
                + "\n"
            )
        else:
            sys.stderr.write(f"{type(exc).__name__}: {' '.join(str(exc).split())}\n")  # one line
        raise typer.Exit(1) from None
