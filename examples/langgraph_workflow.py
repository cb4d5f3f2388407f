"""The Imagine tools inside your own LangGraph ``StateGraph``, with a human approval step before paying.

    python examples/langgraph_workflow.py "a hummingbird drinking from a red flower" --duration 2
    python examples/langgraph_workflow.py "…" --yes        # approve without asking (scripts, CI)

quote → approve (``interrupt``: the graph pauses, checkpointed, until a person answers) → generate →
report. Declining ends the run with nothing paid. The tools do the paying through ``ImagineService``;
an approval given here is passed to the wallet for exactly the price the person saw.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from imagine_agent.money import usdc_text
from imagine_agent.service import SANDBOX_NOTICE, ImagineService
from imagine_agent.tools import HumanApproval, ImagineContext, human_approved, imagine_tools


class VideoJob(TypedDict, total=False):
    prompt: str
    duration: float
    quote: dict[str, Any]
    approved: bool
    result: dict[str, Any]
    report: str


def build_workflow(context: ImagineContext) -> Any:
    tools = {tool.name: tool for tool in imagine_tools(context)}

    def quote(job: VideoJob) -> VideoJob:
        return {
            "quote": json.loads(tools["quote_video"].invoke({"prompt": job["prompt"], "duration": job["duration"]}))
        }

    def approve(job: VideoJob) -> VideoJob:
        if not job["quote"].get("allowed"):
            return {"approved": False}
        answer = interrupt(
            {
                "question": f"Pay {usdc_text(job['quote'], 'price')} for a {job['duration']:g}s video of "
                f"{job['prompt']!r}?",
                "quote": job["quote"],
            }
        )
        return {"approved": answer is True}

    def generate(job: VideoJob) -> VideoJob:
        seen = int(job["quote"]["price"])  # atomic units, as every tool gives amounts (priceUsdc beside it)
        with human_approved(HumanApproval(amount=seen, reasons=("approved in the workflow",))):
            raw = tools["generate_video"].invoke({"prompt": job["prompt"], "duration": job["duration"]})
        try:
            return {"result": json.loads(raw)}
        except ValueError:  # a tool error comes back as its message
            return {"result": {"error": raw}}

    def report(job: VideoJob) -> VideoJob:
        if not job.get("approved"):
            why = job["quote"].get("refusal") or "declined by the approver"
            return {"report": f"Not made: {why}. Nothing was paid."}
        r = job["result"]
        if "paid" not in r:
            return {"report": f"Not made: {r.get('error') or r}"}
        paid, left = r["paid"], usdc_text(r["budgetLeft"], "today")
        return {
            "report": f"Made {r.get('videoPath')} ({r['status']}); paid {usdc_text(paid)} "
            f"(transaction {paid['transaction']}); budget left today {left}."
        }

    graph = StateGraph(VideoJob)
    graph.add_node("quote", quote)
    graph.add_node("approve", approve)
    graph.add_node("generate", generate)
    graph.add_node("report", report)
    graph.add_edge(START, "quote")
    graph.add_edge("quote", "approve")
    graph.add_conditional_edges("approve", lambda job: "generate" if job["approved"] else "report")
    graph.add_edge("generate", "report")
    graph.add_edge("report", END)
    return graph.compile(checkpointer=InMemorySaver())


def ask_human(question: str, yes: bool) -> bool:
    print(question, file=sys.stderr)
    if yes:
        print("approved (--yes)", file=sys.stderr)
        return True
    if not sys.stdin.isatty():
        print("declined: no terminal to ask (use --yes)", file=sys.stderr)
        return False
    return input("approve? [y/N] ").strip().lower() == "y"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Quote, approve, pay and generate one video.")
    parser.add_argument("prompt", nargs="?", default="a hummingbird drinking from a red flower, slow motion")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--yes", action="store_true", help="approve the payment without asking")
    args = parser.parse_args(argv)

    with ImagineService.create() as service:
        if service.is_sandbox:
            print(SANDBOX_NOTICE, file=sys.stderr)
        workflow = build_workflow(ImagineContext(service=service))
        config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
        state = workflow.invoke({"prompt": args.prompt, "duration": args.duration}, config)
        while "__interrupt__" in state:
            question = state["__interrupt__"][0].value["question"]
            state = workflow.invoke(Command(resume=ask_human(question, args.yes)), config)
        print(state["report"])
        return 0 if state.get("approved") else 3


if __name__ == "__main__":
    raise SystemExit(main())
