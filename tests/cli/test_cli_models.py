"""Issue 13 on the CLI: ``--model`` (any model the server lists), ``quote`` with each model's price,
the media page and the coin in the output, and the sandbox's ``--x402`` / ``--network`` flags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagine_agent.cli import app
from imagine_agent.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e
KEY = "0x" + "5d" * 32


@pytest.fixture
def api_standin() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(speed=600, x402="v2", rich_results=True)) as s:
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
        "IMAGINE_MAX_PER_CALL": "10",
    }

    def invoke(*args: str):
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


def test_quote_lists_every_model_with_its_price(run) -> None:
    body = json.loads(run("quote", "a heron", "--duration", "8", "--json").stdout)
    assert body["x402Version"] == 2 and body["defaultModel"] == "xai-grok-imagine"
    assert {m: p["amount"] for m, p in body["modelPrices"].items()} == {
        "xai-grok-imagine": "1000000",
        "sora-2": "1200000",
        "sora-2-pro": "6000000",
        "fal-kling-o3": "2600000",
    }
    text = run("quote", "a heron", "--model", "sora-2-pro").stdout
    assert "6.000000 USDC" in text.splitlines()[0] and "sora-2-pro" in text.splitlines()[0]
    assert "model fal-kling-o3" in text and "(server default)" in text


def test_a_model_that_cannot_make_the_request_is_left_out_of_the_prices(run) -> None:
    body = json.loads(run("quote", "a heron", "--duration", "2", "--json").stdout)
    assert {m: p["amount"] for m, p in body["modelPrices"].items()} == {
        "xai-grok-imagine": "250000",
        "sora-2": "300000",
        "sora-2-pro": "1500000",
    }


def test_generate_with_a_model_shows_the_media_page_and_the_coin(run, api_standin: SandboxServer) -> None:
    result = run("generate", "a heron at dawn", "--model", "fal-kling-o3", "--auto-clank", "--duration", "5")
    assert result.exit_code == 0, result.output
    (settled,) = api_standin.state.settlements()
    assert settled.amount == 1_625_000  # kling, 5 s
    job = api_standin.state.job(settled.task_id)
    assert job is not None and job.model == "fal-kling-o3"
    assert f"media page  {api_standin.url}/media/{settled.task_id}" in result.stdout
    coin_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("coin"))
    assert "0x" in coin_line and "is its creator" in coin_line and settled.payer in coin_line


def test_generate_json_carries_the_media_page_and_the_coin(run, api_standin: SandboxServer) -> None:
    body = json.loads(run("generate", "a fox", "--model", "sora-2", "--auto-clank", "--json").stdout)
    assert body["mediaUrl"] == f"{api_standin.url}/media/{body['taskId']}"
    assert body["coin"]["address"].startswith("0x") and body["coin"]["creator"] == body["paid"]["payer"]
    assert body["txHash"] == api_standin.state.settlements()[0].transaction


def test_an_unlisted_model_is_bad_input_and_costs_nothing(run, api_standin: SandboxServer) -> None:
    result = run("generate", "a fox", "--model", "sora", "--json")
    assert result.exit_code == 2 and "sora" in json.loads(result.stdout)["message"]
    assert api_standin.state.settlements() == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--x402", "v3"], "--x402 must be v1, v2 or both"),
        (["--network", "ethereum"], "unknown network"),
    ],
)
def test_sandbox_flags_are_checked(flags: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["sandbox", *flags])
    assert result.exit_code == 2 and message in result.output
