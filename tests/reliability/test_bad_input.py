"""Bad input costs nothing: broken configuration stops the CLI with a readable message, and image URLs
to loopback, private or link-local addresses are refused before anything is sent or signed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.config import Settings
from imagine_agent.errors import InvalidRequestError
from imagine_agent.ledger import Ledger
from imagine_agent.sandbox import SandboxServer
from imagine_agent.service import ImagineService
from imagine_agent.wallet import Wallet
from tests.conftest import FAST_POLL, CountingSigner

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SECRET = "0x" + "c0ffee42" * 8

BROKEN_CONFIGS = {
    "toml syntax": ('max_per_call = "5\n', {}, "not valid TOML"),
    "wrong types": (f'max_per_call = "lots"\nprivate_key = {SECRET}\nnetworks = 7\n', {}, "max_per_call"),
    "bad environment": (
        "",
        {"IMAGINE_MAX_PER_CALL": "0.0000001", "IMAGINE_AUTO_CLANK": "sometimes"},
        "IMAGINE_AUTO_CLANK='sometimes'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CONFIGS))
def test_a_broken_configuration_exits_2_with_a_readable_message(case: str, tmp_path: Path) -> None:
    text, env, expected = BROKEN_CONFIGS[case]
    config = tmp_path / "imagine.toml"
    config.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "imagine_agent", "budget"],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "IMAGINE_CONFIG": str(config),
            "IMAGINE_DATA_DIR": str(tmp_path),
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-2000:]
    assert "Traceback" not in output and "ConfigurationError" in output
    assert expected in output.replace("\n", " ")
    assert SECRET[2:] not in output and str(int(SECRET, 16)) not in output  # TOML read the bare key as a number


def test_comma_separated_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("IMAGINE_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.setenv("IMAGINE_NETWORKS", "base, base-sepolia")
    monkeypatch.setenv("IMAGINE_PAY_TO", '["0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"]')
    settings = Settings()
    assert settings.networks == ["base", "base-sepolia"]
    assert settings.pay_to == ["0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"]


PRIVATE_IMAGES = [
    "http://127.0.0.1:8000/cat.png",
    "http://localhost/cat.png",
    "http://10.1.2.3/cat.png",
    "http://192.168.0.10/cat.png",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/cat.png",
    "http://[fe80::1]/cat.png",
    "http://2130706433/cat.png",  # 127.0.0.1 as one number
    "http://0x7f.1/cat.png",  # 127.0.0.1, hex and short
    "http://0177.0.0.1/cat.png",  # 127.0.0.1 in octal
    "http://nas.local/cat.png",
]


@pytest.mark.parametrize("image", PRIVATE_IMAGES)
def test_a_private_image_url_sends_and_signs_nothing(
    image: str,
    sandbox_server: SandboxServer,
    make_wallet: Callable[..., Wallet],
    counting_signer: CountingSigner,
    ledger: Ledger,
) -> None:
    sent: list[httpx.Request] = []
    with ImagineClient(sandbox_server.url, wallet=make_wallet(), poll=FAST_POLL) as client:
        client.http.event_hooks["request"].append(sent.append)
        for call in (client.quote, client.create):
            with pytest.raises(InvalidRequestError, match="cannot reach"):
                call("animate this", image=image)
    assert (
        sent == []
        and counting_signer.signed == 0
        and ledger.payments() == []
        and sandbox_server.state.settlements() == []
    )


async def test_a_private_image_url_sends_nothing_async(
    sandbox_server: SandboxServer, make_wallet: Callable[..., Wallet], counting_signer: CountingSigner
) -> None:
    sent: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        sent.append(request)

    async with AsyncImagineClient(sandbox_server.url, wallet=make_wallet(), poll=FAST_POLL) as client:
        client.http.event_hooks["request"].append(note)
        for image in PRIVATE_IMAGES:
            with pytest.raises(InvalidRequestError, match="cannot reach"):
                await client.create("animate this", image=image)
    assert sent == [] and counting_signer.signed == 0 and sandbox_server.state.settlements() == []


def test_the_service_refuses_too_unless_the_operator_allows_it(
    sandbox_server: SandboxServer, tmp_path: Path, counting_signer: CountingSigner, ledger: Ledger
) -> None:
    base: dict[str, Any] = {
        "base_url": sandbox_server.url,
        "data_dir": tmp_path,
        "poll_first": 0.02,
        "poll_floor": 0.02,
        "poll_cap": 0.2,
        "approval_threshold": None,
    }
    with ImagineService.create(Settings(**base), signer=counting_signer, ledger=ledger) as service:
        with pytest.raises(InvalidRequestError, match="cannot reach"):
            service.generate("animate this", image="http://127.0.0.1:9/cat.png", wait=False)
    assert counting_signer.signed == 0 and sandbox_server.state.settlements() == []
    allowed = Settings(**base, allow_private_image_urls=True)
    with ImagineService.create(allowed, signer=counting_signer, ledger=ledger) as service:
        outcome = service.generate("animate this", image="http://127.0.0.1:9/cat.png", wait=False)
    assert counting_signer.signed == 1 and [s.task_id for s in sandbox_server.state.settlements()] == [outcome.task_id]
