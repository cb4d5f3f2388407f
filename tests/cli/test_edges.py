"""The CLI contract at its edges (issue 20 item 6, (g); issue 23 item 6), on real ``imagine-agent`` processes:
a signal after a payment says what was paid and how to follow the job; a keystore with no password and no
terminal is a clear exit 2; every ``--json`` error has a code; errors are one line off a terminal; ``chat``
exits 3 when a refusal stopped the purchase; a malformed key is an error on every path; ``chat`` greets
before the agent is even imported."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from imagine_agent.sandbox import Fault, SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e
KEY = "0x" + "7e" * 32
FAST = {
    "IMAGINE_POLL_FIRST": "0.05",
    "IMAGINE_POLL_FLOOR": "0.05",
    "IMAGINE_POLL_CAP": "0.2",
    "IMAGINE_SANDBOX_SPEED": "600",
}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") or k.startswith("IMAGINE_TEST_")}
    return {**env, "IMAGINE_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1", "COLUMNS": "80", **FAST, **extra}


def _spawn(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "imagine_agent.cli", *args],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "imagine_agent.cli", *args],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def _one_object(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    body: dict[str, Any] = json.loads(lines[0])
    assert isinstance(body, dict)
    return body


def _paid_in_ledger(ledger: Path, process: subprocess.Popen[str]) -> tuple[str, int]:
    """Wait until the journal holds a payment with its task id (read-only: the CLI owns the file)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if ledger.exists():
            try:
                with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5) as db:
                    row = db.execute(
                        "SELECT task_id, amount FROM payments WHERE task_id IS NOT NULL AND state = 'paid'"
                    ).fetchone()
            except sqlite3.OperationalError:  # the schema is still being created
                row = None
            if row is not None:
                return str(row[0]), int(row[1])
        time.sleep(0.05)
    raise AssertionError("no payment was journaled")


@pytest.fixture
def slow_api() -> Iterator[SandboxServer]:
    """A stand-in for the real API on loopback whose jobs take a minute or more: a signal lands mid-render."""
    with SandboxServer(SandboxConfig(speed=1, announce_sandbox=False)) as server:
        yield server


# ------------------------------------------------------------------------------- a signal after a payment


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_after_paying_prints_one_json_object_with_the_task_and_wait_follows_it(
    slow_api: SandboxServer, tmp_path: Path, signum: int
) -> None:
    env = _env(tmp_path, IMAGINE_BASE_URL=slow_api.url, IMAGINE_PRIVATE_KEY=KEY)
    process = _spawn(tmp_path, env, "generate", "a lighthouse at dusk", "--json", "-o", str(tmp_path / "out"))
    task_id, amount = _paid_in_ledger(tmp_path / "data" / "ledger.sqlite3", process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    body = _one_object(stdout)
    assert body["error"] == "Interrupted" and body["code"] == "interrupted" and body["status"] == "interrupted"
    assert body["exitCode"] == 130 and body["taskId"] == task_id and body["sandbox"] is False
    assert body["paid"]["amount"] == str(amount) and body["paid"]["amountUsdc"] == "1"
    assert body["next"] == f"imagine-agent wait {task_id}" and task_id in body["message"]

    job = slow_api.state.job(task_id)
    assert job is not None and job.run_seconds > 30  # still rendering when the signal came
    job.run_seconds = 0.1  # let it finish now; the printed command, in the same shell, must follow it
    followed = _run(tmp_path, env, *body["next"].split()[1:], "--json")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert _one_object(followed.stdout)["status"] == "completed"
    assert len(slow_api.state.settlements()) == 1  # paid once


def test_ctrl_c_after_paying_says_the_task_and_the_price_in_one_line(slow_api: SandboxServer, tmp_path: Path) -> None:
    env = _env(tmp_path, IMAGINE_BASE_URL=slow_api.url, IMAGINE_PRIVATE_KEY=KEY)
    process = _spawn(
        tmp_path, env, "generate", "a lighthouse at dusk", "-o", str(tmp_path / "out"), "--base-url", slow_api.url
    )
    task_id, _ = _paid_in_ledger(tmp_path / "data" / "ledger.sqlite3", process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("Interrupted:")]
    assert task_id in line and "1.000000 USDC on base" in line
    assert f"`imagine-agent wait {task_id} --base-url {slow_api.url}` follows it" in line


def test_an_interrupt_on_the_embedded_sandbox_says_the_job_ended_with_it(tmp_path: Path) -> None:
    """The embedded sandbox lives in the process: no `wait` is offered that could not find the job."""
    env = _env(tmp_path, IMAGINE_SANDBOX_SPEED="1")
    process = _spawn(tmp_path, env, "generate", "a lighthouse at dusk", "--json", "-o", str(tmp_path / "out"))
    task_id, _ = _paid_in_ledger(tmp_path / "data" / "sandbox-ledger.sqlite3", process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    body = _one_object(stdout)
    assert body["code"] == "interrupted" and body["taskId"] == task_id and body["sandbox"] is True
    assert "next" not in body and "ended with it" in body["message"] and "sandbox money" in body["message"]


def test_an_interrupt_before_paying_says_nothing_was_paid(tmp_path: Path) -> None:
    config = SandboxConfig(speed=600, faults=[Fault(kind="delay", match="create", params={"seconds": 60})])
    with SandboxServer(config) as server:  # a loopback sandbox: it announces itself, then stalls the 402
        env = _env(tmp_path, IMAGINE_BASE_URL=server.url, IMAGINE_PRIVATE_KEY=KEY)
        process = _spawn(tmp_path, env, "generate", "a lighthouse at dusk", "-o", str(tmp_path / "out"))
        assert process.stderr is not None
        banner = process.stderr.readline()  # the service is open: the quote request is on its way
        assert banner.startswith("SANDBOX"), banner
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stdout + stderr
        assert "Interrupted: interrupted before any payment: nothing was paid" in stderr
        assert server.state.settlements() == []


# ------------------------------------------------------------------------------ keys, passwords, codes


def test_a_keystore_without_password_or_terminal_is_a_clear_exit_2(slow_api: SandboxServer, tmp_path: Path) -> None:
    from eth_account import Account

    keystore = tmp_path / "keystore.json"
    keystore.write_text(json.dumps(Account.encrypt(bytes.fromhex("7e" * 32), "pw", kdf="pbkdf2", iterations=2)))
    env = _env(tmp_path, IMAGINE_BASE_URL=slow_api.url, IMAGINE_KEYSTORE=str(keystore))
    for extra in (["--json"], []):
        done = _run(tmp_path, env, "generate", "a cat", *extra)
        assert done.returncode == 2, done.stdout + done.stderr
        text = done.stdout if extra else done.stderr
        assert "IMAGINE_KEYSTORE_PASSWORD" in text and "Interrupted" not in text
        if extra:
            body = _one_object(done.stdout)
            assert body["code"] == "configuration" and body["exitCode"] == 2
        else:
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line in a log file
    assert slow_api.state.settlements() == []


@pytest.mark.parametrize(
    "args",
    [["generate", "a cat", "--json"], ["quote", "a cat", "--json"], ["chat", "a cat", "--json"], ["budget", "--json"]],
)
def test_a_malformed_private_key_is_an_error_on_every_path(tmp_path: Path, args: list[str]) -> None:
    """The embedded sandbox (no IMAGINE_BASE_URL) used to ignore it and pay with a throwaway key."""
    secret = "0x" + "ab" * 31 + "zz"
    done = _run(tmp_path, _env(tmp_path, IMAGINE_PRIVATE_KEY=secret), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    body = _one_object(done.stdout)
    assert body["code"] == "configuration" and "IMAGINE_PRIVATE_KEY" in body["message"]
    assert "ab" * 8 not in done.stdout + done.stderr  # never echoed
    assert not (tmp_path / "data" / "sandbox-ledger.sqlite3").exists()  # nothing was started, let alone paid


def test_every_json_error_has_a_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path)
    usage = _run(tmp_path, env, "quote", "a cat", "--duration", "abc", "--json")
    assert usage.returncode == 2 and _one_object(usage.stdout)["code"] == "usage"
    unknown = _run(tmp_path, env, "nope", "--json")
    assert unknown.returncode == 2 and _one_object(unknown.stdout)["code"] == "usage"

    from imagine_agent import service
    from imagine_agent.cli import app

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(service.ImagineService, "quote", crash)
    for name in list(os.environ):
        if name.startswith("IMAGINE_") and not name.startswith("IMAGINE_TEST_"):
            monkeypatch.delenv(name)
    result = CliRunner().invoke(app, ["quote", "a cat", "--json"], env={"IMAGINE_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code == 7 and _one_object(result.stdout)["code"] == "internal"


def test_errors_are_one_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    long_dir = tmp_path / ("a-rather-long-directory-name-" * 4)
    long_dir.write_text("a file where a directory should be")
    env = _env(tmp_path)
    done = _run(tmp_path, env, "generate", "a cat", "-o", str(long_dir / "out"))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("InvalidRequestError:") and len(line) > 120 and "Nothing was paid" in line
    usage = _run(tmp_path, env, "quote", "a cat", "--duration", "abc")
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [usage.stderr.strip()] and "--duration" in usage.stderr


# ------------------------------------------------------------------------------------------------- chat


# An import hook: a line on stderr the moment the agent (LangChain) module starts loading.
_HOOK = """
import sys, importlib.abc
class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("imagine_agent.agent", "imagine_agent.chat", "langchain_core"):
            sys.stderr.write(f"IMPORT {name}\\n"); sys.stderr.flush()
        return None
sys.meta_path.insert(0, Hook())
sys.argv = ["imagine-agent", *sys.argv[1:]]
from imagine_agent.cli import main
main()
"""


@pytest.mark.parametrize("message", [["make a video of a cat"], []], ids=["one message", "interactive"])
def test_chat_greets_before_the_agent_is_imported(tmp_path: Path, message: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HOOK, "chat", *message],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Chat with the video agent (embedded sandbox: no real money moves)"), lines[:3]
    assert any(line.startswith("IMPORT imagine_agent.agent") for line in lines[1:]), lines
