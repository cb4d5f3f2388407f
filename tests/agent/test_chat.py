"""``imagine-agent chat``: one-shot and interactive, progress on stderr, approvals in the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from imagine_agent.chat import ChatSession
from imagine_agent.cli import app as cli
from imagine_agent.service import ImagineService

CORGI = "make me an 8-second video of a corgi surfing at sunset"
PRICEY = "make me a 20-second video of a corgi surfing at sunset"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IMAGINE_MODEL", raising=False)
    monkeypatch.setenv("IMAGINE_SANDBOX_SPEED", "600")
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "data"))

    def invoke(*args: str, stdin: str | None = None) -> Any:
        return CliRunner().invoke(cli, ["chat", *args], input=stdin)

    return invoke


def test_one_shot_json(run: Any, tmp_path: Path) -> None:
    out = run("--json", CORGI)
    assert out.exit_code == 0, out.output
    (line,) = out.stdout.strip().splitlines()
    reply = json.loads(line)
    assert set(reply) == {"reply", "taskId", "paid", "videoPath", "modelCalls", "sandbox"} and reply["sandbox"] is True
    assert reply["paid"]["amount"] == "1000000"  # atomic units beside the decimal, as every surface gives them
    assert reply["modelCalls"] == 3 and reply["paid"]["amountUsdc"] == "1"
    assert (tmp_path / reply["videoPath"]).stat().st_size > 0
    assert reply["taskId"] in reply["reply"] and "not an LLM" in reply["reply"]


def test_one_shot_text_with_progress_on_stderr(run: Any) -> None:
    out = run(CORGI)
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("Your 8-second video of a corgi surfing at sunset is ready.")
    for line in (
        "SANDBOX",
        "→ quote_video",
        "→ generate_video",
        "paid 1.000000 USDC on base",
        "completed",
        "downloaded imagine-output/",
    ):
        assert line in out.stderr
    assert "→" not in out.stdout


def test_no_terminal_and_no_yes_declines_the_payment(run: Any) -> None:
    out = run("--json", PRICEY)
    reply = json.loads(out.stdout)
    assert reply["paid"] is None and reply["taskId"] is None
    assert reply["reply"].startswith("Not paid") and "--yes" in reply["reply"]


def test_yes_approves(run: Any) -> None:
    out = run("--yes", "--json", PRICEY)
    reply = json.loads(out.stdout)
    assert reply["paid"]["amountUsdc"] == "2.5" and reply["modelCalls"] == 3


def test_interactive_session(run: Any) -> None:
    out = run("--json", stdin=f"{CORGI}\n\nwhat's my budget?\nexit\nnever read\n")
    first, second = (json.loads(line) for line in out.stdout.strip().splitlines())
    assert first["paid"]["amountUsdc"] == "1"
    assert "spent 1.000000 USDC" in second["reply"] and second["taskId"] is None


def test_auto_clank_flag_reaches_the_tools(run: Any) -> None:
    out = run("--json", "--auto-clank", "always", CORGI)
    reply = json.loads(out.stdout)
    assert "is the coin's creator and earns its trading fees" in reply["reply"]


def test_terminal_approval_can_drop_the_coin(service: ImagineService, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([False, True])  # "Approve?" no; "without the coin instead?" yes
    asked: list[str] = []

    def confirm(text: str, **kwargs: Any) -> bool:
        asked.append(text)
        return next(answers)

    monkeypatch.setattr(typer, "confirm", confirm)
    session = ChatSession(service, interactive=True)
    session.context.auto_clank = "ask"
    session.context.output_dir = service.output_dir
    turn = session.send(CORGI + " and coin it")
    assert "deploys a coin" in asked[0] and len(asked) == 2
    assert turn.to_json()["paid"]["amountUsdc"] == "1"
    assert service.requests.paid_creates[0]["templateData"].get("autoClank", False) is False  # type: ignore[attr-defined]
    assert "creator" not in turn.reply


def test_terminal_approval_yes(service: ImagineService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typer, "confirm", lambda text, **kwargs: True)
    session = ChatSession(service, interactive=True)
    turn = session.send(PRICEY)
    assert turn.to_json()["paid"]["amountUsdc"] == "2.5"
    assert sorted(name for name, _ in turn.tool_results) == ["budget_status", "generate_video", "quote_video"]
    assert turn.tool_results[-1][0] == "generate_video"


def test_yes_never_approves_a_coin_under_ask(service: ImagineService, monkeypatch: pytest.MonkeyPatch) -> None:
    """--yes approves prices; a coin under autoClank=ask needs a person at the terminal (and one who says yes)."""
    asked: list[str] = []
    monkeypatch.setattr(typer, "confirm", lambda text, **kwargs: asked.append(text) or False)
    for interactive in (False, True):
        session = ChatSession(service, yes=True, as_json=not interactive, interactive=interactive)
        session.context.auto_clank = "ask"
        session.context.output_dir = service.output_dir
        turn = session.send(CORGI + " and coin it")
        assert turn.to_json()["paid"] is None and turn.reply.startswith("Not paid")
    # Only the interactive session asked ("Approve?", then "without the coin instead?"), and was told no twice.
    assert len(asked) == 2 and "deploys a coin" in asked[0]
    assert service.receipts() == []
