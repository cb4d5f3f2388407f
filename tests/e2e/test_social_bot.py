"""The social bot example: killed with SIGKILL mid-run and restarted, it posts every request exactly once
and the sandbox settles exactly one payment per request; budget exhaustion and the kill switch stop it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.ledger import open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.x402 import PrivateKeySigner
from tests.embedded import PYTHON, ROOT, subprocess_env

BOT = str(ROOT / "examples" / "social_bot.py")
REQUESTS = [
    {
        "id": f"r{i}",
        "from": f"@user{i}",
        "text": f"scene number {i}: a lantern drifting on a lake",
        "duration": 1 + i % 2,
    }
    for i in range(1, 6)
]


@pytest.fixture
def api_standin() -> Iterator[SandboxServer]:
    # Each job takes 0.4-1.2 s. A stand-in for the real API: its payments go to the operator's ledger.
    with SandboxServer(SandboxConfig(speed=150, announce_sandbox=False)) as server:
        yield server


def _env(tmp_path: Path, sandbox: SandboxServer) -> dict[str, str]:
    key = PrivateKeySigner.generate().export_private_key()
    return subprocess_env(
        tmp_path / "data",
        IMAGINE_PRIVATE_KEY=key,
        IMAGINE_POLL_FIRST="0.05",
        IMAGINE_POLL_FLOOR="0.05",
        IMAGINE_POLL_CAP="0.2",
    )


def _start(tmp_path: Path, sandbox: SandboxServer, env: dict[str, str], run: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            PYTHON,
            BOT,
            "--base-url",
            sandbox.url,
            "--inbox",
            str(tmp_path / "inbox.jsonl"),
            "--outbox",
            str(tmp_path / "outbox.jsonl"),
        ],
        env=env,
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / f"bot-{run}.log").open("w"),
    )


def _state(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "data" / "social-bot" / "state.json"
    try:
        requests: dict[str, Any] = json.loads(path.read_text())["requests"]
        return requests
    except (OSError, ValueError):
        return {}


def _posts(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "outbox.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def _settlements(sandbox: SandboxServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{sandbox.url}/_admin/settlements").json()
    return found


def _kill_when(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the bot finished before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill the bot"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_killed_twice_and_restarted_posts_each_request_once_and_pays_once(
    tmp_path: Path, api_standin: SandboxServer
) -> None:
    (tmp_path / "inbox.jsonl").write_text("".join(json.dumps(r) + "\n" for r in REQUESTS))
    env = _env(tmp_path, api_standin)

    # 1: kill -9 while a paid job renders, after at least one post
    first = _start(tmp_path, api_standin, env, 1)
    _kill_when(
        first,
        lambda: (
            len(_posts(tmp_path)) >= 1
            and any(
                r.get("status") == "rendering" and r["taskId"] not in {p["taskId"] for p in _posts(tmp_path)}
                for r in _state(tmp_path).values()
            )
        ),
    )
    rendering = {rid: r["taskId"] for rid, r in _state(tmp_path).items() if r.get("status") == "rendering"}
    assert rendering and len(_posts(tmp_path)) < len(REQUESTS)

    # 2: kill -9 after the next payment settled but before its 202 arrived (the sandbox holds the answer)
    settled = len(_settlements(api_standin))
    armed = httpx.post(
        f"{api_standin.url}/_admin/faults",
        json={"faults": [{"kind": "delay", "match": "create", "params": {"seconds": 5, "paid_only": True}}]},
    )
    assert armed.status_code == 200, armed.text
    second = _start(tmp_path, api_standin, env, 2)
    _kill_when(second, lambda: len(_settlements(api_standin)) > settled)
    unanswered = {rid for rid, r in _state(tmp_path).items() if r.get("status") == "paying"}
    assert len(unanswered) == 1

    # 3: run to the end
    third = _start(tmp_path, api_standin, env, 3)
    out, _ = third.communicate(timeout=60)
    assert third.returncode == 0, (tmp_path / "bot-3.log").read_text()
    assert json.loads(out.splitlines()[-1])["stopped"] is None
    assert f"{unanswered.pop()}: task" in (log := (tmp_path / "bot-3.log").read_text())
    assert "(already paid, following it)" in log  # the journaled header was re-sent, not a new one signed

    posts = _posts(tmp_path)
    assert Counter(p["requestId"] for p in posts) == Counter(r["id"] for r in REQUESTS)  # each posted once
    for post in posts:
        assert Path(post["videoPath"]).stat().st_size > 0 and post["paid"].endswith("USDC")
    by_request = {p["requestId"]: p["taskId"] for p in posts}
    assert all(by_request[rid] == task for rid, task in rendering.items())  # resumed, not bought again

    settlements = _settlements(api_standin)
    assert len(settlements) == len(REQUESTS)  # one payment per request
    assert Counter(s["taskId"] for s in settlements) == Counter(by_request.values())
    with open_ledger(tmp_path / "data" / "ledger.sqlite3") as ledger:
        assert sorted(p.state.value for p in ledger.payments()) == ["paid"] * len(REQUESTS)


def test_stops_cleanly_when_the_budget_is_spent(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    inbox.write_text("".join(json.dumps({**r, "duration": 2}) + "\n" for r in REQUESTS[:3]))
    done = subprocess.run(
        [PYTHON, BOT, "--inbox", str(inbox), "--outbox", str(tmp_path / "out.jsonl"), "--daily-budget", "0.5"],
        env=subprocess_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["posted"] == 2 and summary["spent"] == "500000"
    assert "budget is spent" in summary["stopped"] and "stopping: the budget is spent" in done.stderr


def test_kill_switch_stops_it_before_any_payment(tmp_path: Path, api_standin: SandboxServer) -> None:
    (tmp_path / "inbox.jsonl").write_text(json.dumps(REQUESTS[0]) + "\n")
    env = _env(tmp_path, api_standin)
    (tmp_path / "data").mkdir(exist_ok=True)
    with open_ledger(tmp_path / "data" / "ledger.sqlite3") as ledger:
        ledger.set_frozen(True, reason="operator pressed the kill switch")
    proc = _start(tmp_path, api_standin, env, 1)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert json.loads(out.splitlines()[-1])["stopped"] == "the kill switch is on"
    assert httpx.get(f"{api_standin.url}/_admin/settlements").json() == []


def test_a_denied_request_is_skipped_for_good_and_nothing_is_paid(tmp_path: Path, api_standin: SandboxServer) -> None:
    (tmp_path / "inbox.jsonl").write_text(json.dumps(REQUESTS[0]) + "\n")
    env = {**_env(tmp_path, api_standin), "IMAGINE_APPROVAL_THRESHOLD": "0.1"}
    proc = subprocess.Popen(
        [
            PYTHON,
            BOT,
            "--base-url",
            api_standin.url,
            "--inbox",
            str(tmp_path / "inbox.jsonl"),
            "--outbox",
            str(tmp_path / "outbox.jsonl"),
            "--follow",
            "--poll",
            "0.1",
        ],
        env=env,
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "bot.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        with open_ledger(tmp_path / "data" / "ledger.sqlite3") as ledger:
            while not ledger.approvals():
                assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "bot.log").read_text()
                time.sleep(0.05)
            (entry,) = ledger.approvals()
            ledger.decide_approval(entry.id, approve=False, decided_by="console", reason="not on brand", ttl=600)
            while "the operator said no" not in (tmp_path / "bot.log").read_text():
                assert time.monotonic() < deadline, (tmp_path / "bot.log").read_text()
                time.sleep(0.05)
            time.sleep(0.5)  # more passes: a denial is final, so nothing is asked or paid again
            assert len(ledger.approvals()) == 1 and ledger.payments() == []
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and json.loads(out.splitlines()[-1])["posted"] == 0
    assert _state(tmp_path)["r1"]["status"] == "skipped" and "denial is final" in _state(tmp_path)["r1"]["reason"]
    assert _posts(tmp_path) == [] and _settlements(api_standin) == []
