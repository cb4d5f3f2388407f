"""kill -9 at each step of a payment, then a restart: no lost record, no second payment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imagine_agent.ledger import PaymentState, open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
KEY = "0x" + "5a" * 32


def start_child(url: str, data_dir: Path, step: str) -> subprocess.Popen[str]:
    env = {**os.environ, "IMAGINE_PRIVATE_KEY": KEY, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_child", url, str(data_dir), step],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_child(url: str, data_dir: Path, step: str) -> subprocess.CompletedProcess[str]:
    proc = start_child(url, data_dir, step)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def check_exactly_one_payment(server: SandboxServer, data_dir: Path) -> None:
    settled = server.state.settlements()
    assert len(settled) == 1, settled
    with open_ledger(data_dir / "ledger.sqlite3") as ledger:
        paid = ledger.payments(states=[PaymentState.PAID])
        assert len(paid) == 1 and paid[0].nonce == settled[0].nonce
        assert ledger.payments(states=[PaymentState.UNKNOWN, PaymentState.REJECTED]) == []
        live_reserved = [p for p in ledger.payments(states=[PaymentState.RESERVED]) if p.header is not None]
        assert live_reserved == []
        task = ledger.get_task(paid[0].task_id or "")
        assert task is not None and task.status == "completed"


@pytest.mark.parametrize("step", ["reserved", "journaled", "paid", "waiting"])
def test_kill_at_step_then_restart(step: str, tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=300)) as server:
        crashed = run_child(server.url, tmp_path, step)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        survivor = run_child(server.url, tmp_path, "none")
        assert survivor.returncode == 0, survivor.stderr[-3000:]
        outcome = json.loads(survivor.stdout.strip().splitlines()[-1])
        assert outcome["status"] == "completed" and Path(outcome["videoPath"]).exists()
        check_exactly_one_payment(server, tmp_path)


def test_kill_while_the_paid_request_is_in_flight(tmp_path: Path) -> None:
    """The server settled, but the process died before it read the 202."""
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=300)) as server:
        server.state.add_faults({"kind": "delay", "match": "create", "params": {"seconds": 3.0, "paid_only": True}})
        proc = start_child(server.url, tmp_path, "none")
        deadline = time.monotonic() + 60
        while not server.state.settlements() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.state.settlements(), "the sandbox never settled"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        survivor = run_child(server.url, tmp_path, "none")
        assert survivor.returncode == 0, survivor.stderr[-3000:]
        check_exactly_one_payment(server, tmp_path)
