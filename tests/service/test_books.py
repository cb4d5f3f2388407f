"""The books follow the API a command points at, and every id a surface prints is found by the command it
names, in the same shell, with no extra flag (money-safety rule 8; issue 20 (c) and (d)).

Real parts only: the CLI and the social bot as subprocesses, a sandbox server on loopback that says it is the
sandbox, SQLite books in a data dir.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.books import Books
from imagine_agent.config import Settings
from imagine_agent.ledger import ApprovalState, PaymentState, open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.x402 import PrivateKeySigner
from tests.embedded import PYTHON, ROOT, subprocess_env

BOT = str(ROOT / "examples" / "social_bot.py")
IMAGINE_AGENT = str(Path(sys.executable).parent / "imagine-agent")  # the console script, as a shell finds it


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "imagine_agent", *args], env=env, capture_output=True, text=True, timeout=120)


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stdout + done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def _as_printed(command: str) -> list[str]:
    """The command exactly as a surface printed it, with ``imagine-agent`` found the way a shell finds it."""
    argv = shlex.split(command)
    assert argv[0] == "imagine-agent"
    if not Path(IMAGINE_AGENT).exists():
        pytest.skip("the imagine-agent console script is not installed next to this Python")
    return [IMAGINE_AGENT, *argv[1:]]


def test_c_the_bot_against_a_running_sandbox_prints_an_approve_command_that_works_as_printed(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "inbox.jsonl", tmp_path / "outbox.jsonl"
    inbox.write_text(
        json.dumps({"id": "r1", "from": "@ana", "text": "a lantern drifting on a lake", "duration": 2}) + "\n"
    )
    key = PrivateKeySigner.generate().export_private_key()
    # As the README has it: the user's own key, a threshold below the 0.25 USDC price, no IMAGINE_BASE_URL in
    # the shell (the bot is given --base-url), the same shell for every command afterwards.
    env = subprocess_env(
        tmp_path / "data",
        IMAGINE_PRIVATE_KEY=key,
        IMAGINE_APPROVAL_THRESHOLD="0.1",
        IMAGINE_POLL_FIRST="0.05",
        IMAGINE_POLL_FLOOR="0.05",
        IMAGINE_POLL_CAP="0.2",
    )
    with SandboxServer(SandboxConfig(speed=150)) as sandbox:  # says it is the sandbox, like `imagine-agent sandbox`
        bot = [PYTHON, BOT, "--base-url", sandbox.url, "--inbox", str(inbox), "--outbox", str(outbox)]
        first = subprocess.run(bot, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout.splitlines()[-1])["posted"] == 0
        printed = re.search(r"`(imagine-agent approvals approve [^`]+)`", first.stderr)
        assert printed is not None, first.stderr
        approval_id = printed.group(1).split()[-1]

        listed = _json(_cli(env, "approvals", "list", "--json"))["approvals"]
        assert [(a["id"], a["books"], a["state"]) for a in listed] == [(approval_id, "sandbox", "awaiting_approval")]
        assert approval_id in _cli(env, "approvals", "list").stdout

        approved = subprocess.run(_as_printed(printed.group(1)), env=env, capture_output=True, text=True, timeout=120)
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert approved.stdout.startswith(f"approved {approval_id}")

        second = subprocess.run(bot, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout.splitlines()[-1])["posted"] == 1
        third = subprocess.run(bot, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert json.loads(third.stdout.splitlines()[-1])["posted"] == 1  # posted once, not again
        assert len(httpx.get(f"{sandbox.url}/_admin/settlements").json()) == 1  # paid once

    posts = outbox.read_text().splitlines()
    assert len(posts) == 1 and json.loads(posts[0])["requestId"] == "r1"
    with open_ledger(tmp_path / "data" / "sandbox-ledger.sqlite3") as books:
        assert books.get_approval(approval_id).state is ApprovalState.USED
        assert [(p.state, p.amount) for p in books.payments()] == [(PaymentState.PAID, 250_000)]
    # Every operator view shows them, in this shell, with no flag: receipts, budget, the console's books.
    shown = _json(_cli(env, "receipts", "--json"))
    assert [p["taskId"] for p in shown["payments"]] == [json.loads(posts[0])["taskId"]]
    assert _json(_cli(env, "approvals", "list", "--all", "--json"))["approvals"][0]["state"] == "used"
    with Books(Settings(data_dir=tmp_path / "data")) as facade:
        assert [b.record.id for b in facade.approvals(show_all=True)] == [approval_id]


def test_d_right_after_readme_command_1_budget_and_receipts_show_the_purchase(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path / "data")
    made = _json(
        _cli(env, "generate", "a corgi surfing at sunset", "--duration", "2", "--json", "-o", str(tmp_path / "out"))
    )
    assert made["sandbox"] is True
    receipts = _json(_cli(env, "receipts", "--json"))
    assert [p["taskId"] for p in receipts["payments"]] == [made["taskId"]] and receipts["books"] == "sandbox"
    assert made["taskId"] in _cli(env, "receipts").stdout
    budget = _json(_cli(env, "budget", "--json"))
    assert budget["spent"] == made["paid"]["amount"] and budget["sandbox"] is True
    assert budget["otherBooks"]["books"] == "real" and budget["otherBooks"]["spent"] == "0"  # labelled, apart
    text = _cli(env, "budget").stdout
    assert "sandbox books" in text and "real books" in text


def test_d_one_budget_vocabulary_in_budget_quote_and_json(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path / "data", IMAGINE_DAILY_CAP="5", IMAGINE_TOTAL_CAP="50", IMAGINE_MAX_PER_CALL="2")
    budget = _json(_cli(env, "budget", "--json"))
    assert (budget["leftToday"], budget["leftInTotal"], budget["largestNextPayment"]) == (
        "5000000",
        "50000000",
        "2000000",
    )
    text = _cli(env, "budget").stdout
    assert "left today 5.000000 USDC · left in total 50.000000 USDC · largest next payment 2.000000 USDC" in text
    quoted = _cli(env, "quote", "a fox", "--duration", "2")
    assert "largest next payment: 2.000000 USDC" in quoted.stdout and "budget left" not in quoted.stdout
    assert _json(_cli(env, "quote", "a fox", "--duration", "2", "--json"))["largestNextPayment"] == "2000000"
