"""The CLI contract: --json shapes, exit codes 0-4, the kill switch, receipts and budget."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagine_agent.cli import app
from imagine_agent.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e
KEY = "0x" + "7e" * 32


@pytest.fixture
def api_standin() -> Iterator[SandboxServer]:
    """A stand-in for the real API: it does not identify itself as the sandbox, so its money counts as real."""
    with SandboxServer(SandboxConfig(speed=600, announce_sandbox=False)) as s:
        yield s


@pytest.fixture
def run(api_standin: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "IMAGINE_PRIVATE_KEY": KEY,
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),
        "IMAGINE_BASE_URL": api_standin.url,
        "IMAGINE_POLL_FIRST": "0.02",
        "IMAGINE_POLL_FLOOR": "0.02",
        "IMAGINE_POLL_CAP": "0.2",
    }
    runner = CliRunner()

    def invoke(*args: str, **extra_env: str):
        return runner.invoke(app, list(args), env={**env, **extra_env}, catch_exceptions=False)

    return invoke


def test_quote_json_contract(run) -> None:
    result = run("quote", "a cat", "--duration", "4", "--json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert {"amount", "asset", "network", "payTo", "resource", "maxTimeoutSeconds"} <= set(body)
    assert body["amount"] == "500000" and body["network"] == "base"


def test_generate_json_contract_and_files(run, api_standin: SandboxServer, tmp_path: Path) -> None:
    result = run("generate", "a corgi surfing", "--json", "--output", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "completed" and body["taskId"]
    assert set(body["paid"]) == {"amount", "amountUsdc", "asset", "network", "payTo", "payer", "transaction"}
    assert body["paid"]["amountUsdc"] == "1" and body["sandbox"] is False
    assert body["paid"]["transaction"] == api_standin.state.settlements()[0].transaction
    assert body["result"]["generation"]["video"]["url"]
    assert Path(body["videoPath"]).stat().st_size > 0
    status = json.loads(run("status", body["taskId"], "--json").stdout)
    assert status["status"] == "completed"
    waited = json.loads(run("wait", body["taskId"], "--json").stdout)
    assert waited["status"] == "completed"
    downloaded = json.loads(run("download", body["taskId"], "-o", str(tmp_path / "again"), "--json").stdout)
    assert Path(downloaded["videoPath"]).exists()


def test_no_wait_returns_the_task(run) -> None:
    body = json.loads(run("generate", "later", "--no-wait", "--json").stdout)
    assert body["status"] == "submitted" and body["paid"]["amount"] == "1000000"


def test_exit_codes(run, api_standin: SandboxServer) -> None:
    assert run("generate", "", "--json").exit_code == 2
    assert run("generate", "x", "--duration", "0").exit_code == 2
    assert run("generate", "x", "--max-per-call", "0.5", "--json").exit_code == 3
    api_standin.state.add_faults({"kind": "fail"})
    failed = run("generate", "doomed", "--json")
    assert failed.exit_code == 1 and json.loads(failed.stdout)["error"] == "GenerationFailedError"
    assert api_standin.state.settlements()  # the failed video was paid for, and that is recorded
    unreachable = run("generate", "x", "--json", IMAGINE_BASE_URL="http://127.0.0.1:9")
    assert unreachable.exit_code == 6  # nothing was sent: a network failure before paying is not 4


def test_unknown_payment_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with SandboxServer(SandboxConfig(speed=600, idempotent_replay=False, announce_sandbox=False)) as s:
        s.state.add_faults({"kind": "error_after_settle"})
        result = CliRunner().invoke(
            app,
            ["generate", "lost", "--json"],
            env={"IMAGINE_PRIVATE_KEY": KEY, "IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_BASE_URL": s.url},
        )
    assert result.exit_code == 4
    assert json.loads(result.stdout)["error"] == "PaymentStateUnknownError"


def test_kill_switch_and_budget_json(run) -> None:
    assert run("generate", "first", "--json").exit_code == 0
    frozen = json.loads(run("budget", "--freeze", "--json").stdout)
    assert frozen["frozen"] is True
    refused = run("generate", "second", "--json")
    assert refused.exit_code == 3 and json.loads(refused.stdout)["error"] == "WalletFrozenError"
    budget = json.loads(run("budget", "--unfreeze", "--json").stdout)
    assert budget["frozen"] is False
    assert budget["spent"] == "1000000" and budget["reserved"] == "0" and budget["unknown"] == "0"
    assert budget["remaining"]["daily"] == "19000000" and budget["caps"]["daily"] == "20000000"
    assert run("generate", "second", "--json").exit_code == 0


def test_same_request_twice_pays_once(run, api_standin: SandboxServer) -> None:
    first = json.loads(run("generate", "same thing", "--no-wait", "--json").stdout)
    second = json.loads(run("generate", "same thing", "--json").stdout)
    assert second["taskId"] == first["taskId"] and second["attached"] is True
    assert len(api_standin.state.settlements()) == 1
    third = json.loads(run("generate", "same thing", "--new", "--no-wait", "--json").stdout)
    assert third["taskId"] != first["taskId"] and len(api_standin.state.settlements()) == 2


def test_receipts_json_and_csv(run) -> None:
    run("generate", "receipt me", "--json")
    rows = json.loads(run("receipts", "--json").stdout)["payments"]
    assert len(rows) == 1 and rows[0]["state"] == "paid" and rows[0]["amount"] == "1000000"
    table = list(csv.DictReader(io.StringIO(run("receipts", "--csv").stdout)))
    assert table[0]["taskId"] == rows[0]["taskId"] and table[0]["transaction"] == rows[0]["transaction"]


def test_approval_threshold_without_yes_refuses(run) -> None:
    result = run("generate", "pricey", "--json", IMAGINE_APPROVAL_THRESHOLD="0.5")
    assert result.exit_code == 3 and json.loads(result.stdout)["error"] == "ApprovalDeniedError"
    assert run("generate", "pricey", "--json", "--yes", IMAGINE_APPROVAL_THRESHOLD="0.5").exit_code == 0


def test_help_lists_every_command() -> None:
    out = CliRunner().invoke(app, ["--help"]).stdout
    for command in (
        "quote",
        "generate",
        "status",
        "wait",
        "download",
        "sandbox",
        "budget",
        "receipts",
        "reconcile",
        "wallet",
        "chat",
        "mcp",
    ):
        assert command in out


def test_broken_config_is_exit_2_with_one_json_object(tmp_path: Path) -> None:
    config = tmp_path / "imagine.toml"
    config.write_text('daily_cap = "lots"\nprivate_key = 12345\n')
    result = CliRunner().invoke(app, ["budget", "--json"], env={"IMAGINE_CONFIG": str(config)})
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body["error"] == "ConfigurationError" and "daily_cap" in body["message"]
    assert "12345" not in result.stdout + result.stderr  # values are never echoed: one may be a key


def test_auto_clank_under_ask_needs_a_person_at_a_terminal(
    run, api_standin: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IMAGINE_AUTO_CLANK=ask: --auto-clank (even with --yes) pays nothing without a person's yes at a terminal."""
    for args in (("--json",), ("--yes",), ()):
        result = run(
            "generate",
            "a corgi coin",
            "--duration",
            "1",
            "--auto-clank",
            *args,
            "--output",
            str(tmp_path / "out"),
            IMAGINE_AUTO_CLANK="ask",
        )
        output = " ".join(result.output.split())
        assert result.exit_code == 3, output
        assert "'ask'" in output and "Nothing was paid" in output
    assert api_standin.state.settlements() == []

    monkeypatch.setattr("imagine_agent.cli._common._at_terminal", lambda: True)
    env = {
        "IMAGINE_PRIVATE_KEY": KEY,
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),
        "IMAGINE_BASE_URL": api_standin.url,
        "IMAGINE_AUTO_CLANK": "ask",
        "IMAGINE_POLL_FIRST": "0.02",
        "IMAGINE_POLL_FLOOR": "0.02",
        "IMAGINE_POLL_CAP": "0.2",
    }
    args = ["generate", "a corgi coin", "--duration", "1", "--auto-clank", "--output", str(tmp_path / "out")]
    declined = CliRunner().invoke(app, args, input="n\n", env=env)
    assert declined.exit_code == 3 and "not approved" in " ".join(declined.output.split())
    assert api_standin.state.settlements() == []
    approved = CliRunner().invoke(app, args, input="y\n", env=env)
    assert approved.exit_code == 0, approved.output
    assert len(api_standin.state.settlements()) == 1
    assert "Deploy a Clanker coin" in approved.output
