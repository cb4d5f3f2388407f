"""A bot's budget is the bot's (issue 20 (e)): ``--daily-budget`` caps what that bot spent in its own 24 h
window, not every sandbox purchase of the data dir today; its banner says which API it pays, with which
wallet, which books and what persists."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from imagine_agent.ledger import Caps, open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.x402 import PrivateKeySigner
from tests.embedded import PYTHON, ROOT, subprocess_env

BOT = str(ROOT / "examples" / "social_bot.py")
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
REQUESTS = [
    {"id": f"r{i}", "from": "@ana", "text": f"scene {i}: a lantern drifting on a lake", "duration": 2}
    for i in range(1, 4)
]


def _spent_elsewhere(data: Path, amount: int) -> None:
    """Sandbox purchases of other programs in this data dir today (the sandbox books, sandbox windows)."""
    data.mkdir(parents=True, exist_ok=True)
    with open_ledger(data / "sandbox-ledger.sqlite3") as books:
        record = books.reserve(
            request_hash="someone-else",
            amount=amount,
            asset=USDC_BASE,
            network="base",
            pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
            payer="0x" + "1" * 40,
            resource="http://127.0.0.1:1/generation/create",
            caps=Caps(per_call=amount),
            sandbox=True,
        )
        books.journal_authorization(
            record.id, nonce="0x" + "ab" * 32, valid_before=int(time.time()) + 600, header="header"
        )
        books.mark_paid(record.id, task_id="elsewhere", transaction="0x" + "cd" * 32)


def test_daily_budget_counts_only_what_this_bot_spent(tmp_path: Path) -> None:
    _spent_elsewhere(tmp_path / "data", 3_000_000)  # more than the bot's whole daily budget, spent by others
    inbox, outbox = tmp_path / "inbox.jsonl", tmp_path / "out.jsonl"
    inbox.write_text("".join(json.dumps(r) + "\n" for r in REQUESTS))
    done = subprocess.run(
        [PYTHON, BOT, "--inbox", str(inbox), "--outbox", str(outbox), "--daily-budget", "2"],
        env=subprocess_env(tmp_path / "data"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary == {"posted": 3, "stopped": None, "spent": "750000"}  # its own three 0.25 USDC videos

    # Run again with a budget of 1 USDC: its own window already holds 0.75, so one more 0.25 video fits, no more.
    more = [{**r, "id": f"m{i}"} for i, r in enumerate(REQUESTS)]
    inbox.write_text("".join(json.dumps(r) + "\n" for r in more))
    again = subprocess.run(
        [PYTHON, BOT, "--inbox", str(inbox), "--outbox", str(outbox), "--daily-budget", "1"],
        env=subprocess_env(tmp_path / "data"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])
    assert summary["posted"] == 4 and summary["spent"] == "1000000"
    assert "budget is spent" in summary["stopped"] and "bot's daily budget" in summary["stopped"]


def test_the_banner_says_which_api_wallet_books_and_what_persists(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    inbox.write_text("")
    embedded = subprocess.run(
        [PYTHON, BOT, "--inbox", str(inbox), "--outbox", str(tmp_path / "o.jsonl")],
        env=subprocess_env(tmp_path / "data"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert embedded.returncode == 0, embedded.stderr
    assert "embedded sandbox" in embedded.stderr and "throwaway" in embedded.stderr
    assert "sandbox books" in embedded.stderr and "Persists between runs: the outbox" in embedded.stderr

    key = PrivateKeySigner.generate()
    env = subprocess_env(tmp_path / "data", IMAGINE_PRIVATE_KEY=key.export_private_key())
    with SandboxServer(SandboxConfig(speed=150)) as sandbox:
        url = sandbox.url
        loopback = subprocess.run(
            [PYTHON, BOT, "--base-url", sandbox.url, "--inbox", str(inbox), "--outbox", str(tmp_path / "o.jsonl")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert loopback.returncode == 0, loopback.stderr
    assert "throwaway" not in loopback.stderr and "embedded" not in loopback.stderr
    assert f"loopback sandbox server at {url}" in loopback.stderr and key.address in loopback.stderr
    assert "your own key" in loopback.stderr and "sandbox books" in loopback.stderr
    assert "state.json" in loopback.stderr  # its journal persists: the server keeps the jobs too

    with SandboxServer(SandboxConfig(speed=150, announce_sandbox=False)) as real_api:
        real = subprocess.run(
            [PYTHON, BOT, "--base-url", real_api.url, "--inbox", str(inbox), "--outbox", str(tmp_path / "o.jsonl")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert real.returncode == 0, real.stderr
    assert "REAL MONEY" in real.stderr and "real books" in real.stderr and "SANDBOX" not in real.stderr
