"""Every fault kind is scriptable all three ways — ``SandboxConfig(faults=…)``, ``imagine-agent sandbox
--faults FILE`` and ``POST /_admin/faults`` — and what it did is visible in ``GET /_admin/settlements``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.client import ImagineClient
from imagine_agent.ledger import Ledger, PaymentState
from imagine_agent.sandbox import Fault, SandboxConfig, SandboxServer
from imagine_agent.sandbox.config import FAULT_KINDS
from imagine_agent.wallet import Wallet
from tests.conftest import FAST_POLL, SPEED
from tests.embedded import SANDBOX_AT

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
WAYS = ["config", "cli", "admin"]

EVERY_KIND: list[dict[str, Any]] = [
    {"kind": "error_before_settle"},
    {"kind": "error_after_settle", "times": 2},
    {"kind": "drop_after_payment", "params": {"settle": False}},
    {"kind": "delay", "match": "create", "params": {"seconds": 0.5, "paid_only": True}},
    {"kind": "payment_required_after_settle", "params": {"error": "unexpected_settle_error"}},
    {"kind": "price_change", "params": {"amount": 250_000}},
    {"kind": "malformed_json", "match": "status"},
    {"kind": "wrong_content_type", "match": "download", "times": 3},
    {"kind": "status_flapping"},
    {"kind": "fail", "params": {"error": "the model refused", "at": 0.5}},
    {"kind": "not_found", "match": "download", "times": -1},
    {"kind": "progress_backwards", "times": 2},
    {"kind": "unreachable_video"},
    {"kind": "huge_download", "params": {"bytes": 1_048_576, "content_length": False}},
    {"kind": "status_502_html", "times": 3},
    {"kind": "status_after_payment", "params": {"status": 307, "settle": False, "location": "http://127.0.0.2/x"}},
    {"kind": "oversized_answer", "params": {"bytes": 2_000_000}},
    {"kind": "compressed_bomb", "params": {"encoding": "zstd", "bytes": 4_194_304}},
    {"kind": "settlement_pending"},
]
FIRING: list[dict[str, Any]] = [{"kind": "error_after_settle"}, {"kind": "status_502_html", "times": 2}]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def faults_toml(faults: list[dict[str, Any]]) -> str:
    """``[[faults]]`` tables, the TOML form ``load_faults`` reads."""
    lines: list[str] = []
    for fault in faults:
        lines.append("[[faults]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in fault.items() if key != "params"]
        if fault.get("params"):
            lines.append("[faults.params]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in fault["params"].items()]
        lines.append("")
    return "\n".join(lines)


@contextmanager
def cli_sandbox(faults_file: Path, log: Path) -> Iterator[str]:
    """``imagine-agent sandbox --faults FILE`` in its own process; yields the URL it printed once bound."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagine_agent",
                "sandbox",
                "--port",
                "0",
                "--speed",
                str(SPEED),
                "--faults",
                str(faults_file),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            # It binds, then prints its URL (``--port 0``): the URL is this process's, not another test's server's.
            while not (found := SANDBOX_AT.search(log.read_text())):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the CLI sandbox did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
            yield found.group(1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@contextmanager
def armed_sandbox(way: str, faults: list[dict[str, Any]], tmp_path: Path, *, toml: bool = True) -> Iterator[str]:
    """A sandbox on loopback with ``faults`` armed the given way; yields its URL."""
    if way == "cli":
        path = tmp_path / ("faults.toml" if toml else "faults.json")
        path.write_text(faults_toml(faults) if toml else json.dumps({"faults": faults}))
        with cli_sandbox(path, tmp_path / "sandbox.log") as url:
            yield url
        return
    config = SandboxConfig(speed=SPEED, faults=[Fault.model_validate(f) for f in faults] if way == "config" else [])
    with SandboxServer(config) as server:
        if way == "admin":
            armed = httpx.post(server.url + "/_admin/faults", json={"faults": faults}, timeout=10)
            assert armed.status_code == 200, armed.text
        yield server.url


def expected_listing(faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    listing = []
    for spec in faults:
        fault = Fault.model_validate(spec)
        listing.append({**fault.model_dump(mode="json", by_alias=True, exclude_none=True), "remaining": fault.times})
    return listing


def test_every_kind_is_in_the_list() -> None:
    assert sorted(f["kind"] for f in EVERY_KIND) == sorted(FAULT_KINDS)


@pytest.mark.parametrize("way", WAYS)
def test_every_fault_kind_can_be_armed(way: str, tmp_path: Path) -> None:
    with armed_sandbox(way, EVERY_KIND, tmp_path) as url:
        armed = httpx.get(url + "/_admin/faults", timeout=10).json()["faults"]
    assert armed == expected_listing(EVERY_KIND)


@pytest.mark.parametrize("way", WAYS)
def test_armed_faults_fire_and_the_settlement_is_visible(
    way: str, tmp_path: Path, make_wallet: Callable[..., Wallet], ledger: Ledger
) -> None:
    sent: list[str] = []
    with (
        armed_sandbox(way, FIRING, tmp_path, toml=False) as url,
        ImagineClient(url, wallet=make_wallet(), poll=FAST_POLL) as client,
    ):
        client.http.event_hooks["request"].append(lambda r: sent.append(r.headers.get("x-payment", "")))
        job = client.create("scripted faults", duration=2)
        status = job.wait()
        settlements = httpx.get(url + "/_admin/settlements", timeout=10).json()
        remaining = httpx.get(url + "/_admin/faults", timeout=10).json()["faults"]
    assert status.status == "completed"
    paid_sends = [h for h in sent if h]
    assert len(paid_sends) == 2 and len(set(paid_sends)) == 1  # error_after_settle: the same header, re-sent
    (record,) = ledger.payments()
    assert record.state == PaymentState.PAID
    assert [(s["nonce"], s["taskId"], s["amount"]) for s in settlements] == [(record.nonce, job.task_id, "250000")]
    assert remaining == []  # both faults fired and are used up


def test_the_admin_view_is_the_sandbox_record(
    sandbox_server: SandboxServer, make_wallet: Callable[..., Wallet]
) -> None:
    with ImagineClient(sandbox_server.url, wallet=make_wallet(), poll=FAST_POLL) as client:
        client.create("one").wait()
        client.create("two").wait()
    wire = httpx.get(sandbox_server.url + "/_admin/settlements", timeout=10).json()
    assert wire == [s.to_wire() for s in sandbox_server.state.settlements()] and len(wire) == 2


def test_a_broken_fault_file_stops_the_cli_with_a_readable_message(tmp_path: Path) -> None:
    cases = {
        "truncated.json": '[{"kind": "delay"',
        "unknown.json": '[{"kind": "explode"}]',
        "bad.toml": "[[faults]]\nkind = ",
        "typo.json": '[{"kind": "delay", "params": {"secs": 1}}]',
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        done = subprocess.run(
            [sys.executable, "-m", "imagine_agent", "sandbox", "--port", "0", "--faults", str(path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (name, done.stderr[-2000:])
        assert "Traceback" not in done.stderr and name in done.stderr.replace("\n", ""), done.stderr
