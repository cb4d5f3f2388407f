"""The console in a real browser (Debian chromium via Playwright) over a real ledger, sandbox and processes.

- the numbers on the budget page equal ``imagine-agent budget --json``;
- an approval queued by the waiting social bot is approved from the page, and the bot posts once, pays once;
- freeze from the page stops a payment in another process (and its refusal shows in the audit);
- the gallery plays the sandbox MP4 (the video element's readyState and duration, in the page).
Every page is saved as a screenshot under tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.console import ConsoleServer
from imagine_agent.ledger import ApprovalState, PaymentState
from imagine_agent.service import ImagineService
from tests.console.conftest import Operator, screenshot
from tests.embedded import PYTHON, ROOT

pytestmark = pytest.mark.e2e
CLI = [PYTHON, "-m", "imagine_agent"]
BOT = str(ROOT / "examples" / "social_bot.py")


def _until(ready: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def _atomic(page: Any, name: str) -> str:
    value: str = page.locator(f'[data-name="{name}"]').first.get_attribute("data-atomic")
    return value


def test_budget_page_numbers_equal_budget_json(operator: Operator, page: Any, console: ConsoleServer) -> None:
    with ImagineService.create(operator.settings()) as service:
        service.output_dir = operator.data_dir / "videos"
        service.generate("a red fox in fresh snow", duration=2)  # paid and downloaded
        service.generate("a paper boat on a stream", duration=1, wait=False)
    with operator.ledger() as ledger:  # one payment whose answer was lost: it counts as spent, shown as unknown
        lost = ledger.reserve(
            request_hash="lost",
            amount=300_000,
            asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            network="base",
            pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
            payer="0x" + "1" * 40,
            resource=f"{operator.sandbox.url}/generation/create",
            caps=_caps(),
        )
        ledger.journal_authorization(
            lost.id, nonce="0x" + "ab" * 32, valid_before=int(time.time()) + 600, header="header-lost"
        )
        ledger.mark_unknown(lost.id, reason="the connection dropped after sending")
        ledger.reserve(
            request_hash="in-flight",
            amount=125_000,
            asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            network="base",
            pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
            payer="0x" + "1" * 40,
            resource=f"{operator.sandbox.url}/generation/create",
            caps=_caps(),
        )
    done = subprocess.run(
        [*CLI, "budget", "--json", "--base-url", operator.sandbox.url],
        env=operator.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert int(report["unknown"]) == 300_000 and int(report["reserved"]) == 125_000 and int(report["spent"]) > 0

    page.goto(f"{console.url}/")
    assert _atomic(page, "spent") == report["spent"]
    assert _atomic(page, "reserved") == report["reserved"]
    assert _atomic(page, "unknown") == report["unknown"]
    assert _atomic(page, "remaining-daily") == report["remaining"]["daily"]
    assert _atomic(page, "remaining-total") == report["remaining"]["total"]
    assert _atomic(page, "per-call") == report["caps"]["perCall"]
    assert _atomic(page, "cap-daily") == report["caps"]["daily"]
    assert _atomic(page, "threshold") == report["caps"]["approvalThreshold"]
    chart = page.locator("#spend-chart")
    assert chart.get_attribute("data-points") == "4"
    assert int(chart.get_attribute("data-total")) == int(report["spent"]) + 300_000 + 125_000
    screenshot(page, "budget")

    receipts = json.loads(
        subprocess.run(
            [*CLI, "receipts", "--json", "--base-url", operator.sandbox.url],
            env=operator.env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    page.goto(f"{console.url}/receipts")
    assert page.locator("#receipt-count").inner_text() == str(len(receipts["payments"]))
    txs = [p["transaction"] for p in receipts["payments"] if p["transaction"]]
    assert txs and page.locator(f'a.tx[href="https://basescan.org/tx/{txs[0]}"]').count() == 1
    page.select_option("select[name=state]", "unknown")
    page.click("#filters button")
    assert page.locator("#receipt-count").inner_text() == "1"
    assert page.locator('#receipts tr[data-state="unknown"]').count() == 1
    screenshot(page, "receipts")

    html = page.content()
    for secret in ("header-lost", operator.key, operator.key.removeprefix("0x")):
        assert secret not in html
    page.goto(f"{console.url}/unknown")
    assert page.locator(f'#unknown tr[data-id="{lost.id}"]').count() == 1
    page.click("#reconcile")
    assert "payment(s) updated" in page.locator("#reconcile-result").inner_text()
    screenshot(page, "unknown")
    page.goto(f"{console.url}/jobs")
    screenshot(page, "jobs")


def _caps() -> Any:
    from imagine_agent.ledger import Caps

    return Caps(per_call=5_000_000)


def test_social_bot_queues_gets_approved_from_the_page_posts_once_pays_once(
    operator: Operator, page: Any, console: ConsoleServer, tmp_path: Path
) -> None:
    inbox, outbox = tmp_path / "inbox.jsonl", tmp_path / "outbox.jsonl"
    inbox.write_text(
        json.dumps({"id": "r1", "from": "@ana", "text": "a lantern drifting on a lake", "duration": 2}) + "\n"
    )
    env = {**operator.env, "IMAGINE_APPROVAL_THRESHOLD": "0.1"}  # below the 0.25 USDC price
    bot = subprocess.Popen(
        [
            PYTHON,
            BOT,
            "--base-url",
            operator.sandbox.url,
            "--inbox",
            str(inbox),
            "--outbox",
            str(outbox),
            "--follow",
            "--poll",
            "0.2",
        ],
        env=env,
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "bot.log").open("w"),
    )
    try:
        with operator.ledger() as ledger:
            (entry,) = _until(lambda: ledger.approvals(), "the bot to queue its payment")
            assert (entry.state, entry.amount, entry.requester) == (ApprovalState.AWAITING, 250_000, "social-bot")
            time.sleep(1.0)  # a few more passes of the bot: still one entry, nothing reserved, nothing paid
            assert len(ledger.approvals()) == 1 and ledger.payments() == []
            assert httpx.get(f"{operator.sandbox.url}/_admin/settlements").json() == []

            page.goto(f"{console.url}/approvals")
            row = page.locator(f'#approvals tr[data-id="{entry.id}"]')
            assert row.get_attribute("data-state") == "awaiting_approval"
            assert "a lantern drifting on a lake" in row.inner_text()
            screenshot(page, "approvals")
            page.click(f"#approve-{entry.id}")
            assert page.locator(f'#approvals tr[data-id="{entry.id}"]').get_attribute("data-state") in (
                "approved",
                "used",
            )

            posts = _until(lambda: outbox.exists() and outbox.read_text().splitlines(), "the bot to post", 60)
            assert ledger.get_approval(entry.id).state is ApprovalState.USED
        time.sleep(0.6)  # more passes: the request is not posted or paid again
    finally:
        os.kill(bot.pid, signal.SIGTERM)
        out, _ = bot.communicate(timeout=60)
    log = (tmp_path / "bot.log").read_text()
    assert bot.returncode == 0, log
    assert json.loads(out.splitlines()[-1]) == {"posted": 1, "stopped": "asked to stop", "spent": "250000"}
    assert "waiting for the operator" in log and "r1: posted" in log
    posts = outbox.read_text().splitlines()
    assert len(posts) == 1 and json.loads(posts[0])["requestId"] == "r1"
    settlements = httpx.get(f"{operator.sandbox.url}/_admin/settlements").json()
    assert len(settlements) == 1 and settlements[0]["taskId"] == json.loads(posts[0])["taskId"]
    with operator.ledger() as ledger:
        assert [(p.state, p.amount) for p in ledger.payments()] == [(PaymentState.PAID, 250_000)]
        codes = [e.code for e in ledger.events(kinds=["approval"])]
        assert codes == ["approved", "awaiting_approval"]
    page.goto(f"{console.url}/audit")
    screenshot(page, "audit")


def test_freeze_from_the_page_stops_a_payment_in_another_process(
    operator: Operator, page: Any, console: ConsoleServer
) -> None:
    page.goto(f"{console.url}/")
    page.click("#freeze")
    assert "FROZEN" in page.locator("#frozen-badge").inner_text()
    done = subprocess.run(
        [*CLI, "generate", "a moth near a lamp", "--duration", "1", "--json", "--base-url", operator.sandbox.url],
        env=operator.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["code"] == "frozen" and answer["error"] == "WalletFrozenError"
    assert httpx.get(f"{operator.sandbox.url}/_admin/settlements").json() == []
    with operator.ledger() as ledger:
        assert ledger.payments() == []
    page.goto(f"{console.url}/audit")
    assert page.locator('#audit tr[data-kind="refusal"][data-code="frozen"]').count() == 1
    page.goto(f"{console.url}/")
    page.click("#unfreeze")
    assert "payments allowed" in page.locator("#frozen-badge").inner_text()
    screenshot(page, "kill-switch")


def test_the_gallery_plays_the_sandbox_mp4(operator: Operator, page: Any, console: ConsoleServer) -> None:
    with ImagineService.create(operator.settings()) as service:
        outcome = service.generate("neon koi in a night market", duration=2, output_dir=operator.data_dir / "videos")
    assert outcome.downloads is not None and outcome.downloads.video.stat().st_size > 0
    page.goto(f"{console.url}/videos")
    card = page.locator(f'.card[data-task="{outcome.task_id}"]')
    assert "neon koi in a night market" in card.inner_text() and "0.250000 USDC" in card.inner_text()
    card.locator("video").evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function(
        "id => { const v = document.querySelector(`.card[data-task='${id}'] video`);"
        " return v.readyState >= 2 && v.duration > 0 && v.currentTime > 0; }",
        arg=outcome.task_id,
    )
    duration = card.locator("video").evaluate("v => v.duration")
    assert 1.5 <= duration <= 2.5
    assert card.locator("video").evaluate("v => v.videoWidth") > 0
    assert card.locator("video").get_attribute("poster") == f"/media/{outcome.task_id}/preview"
    screenshot(page, "videos")


def test_live_progress_and_budget_warnings_reach_the_open_page(
    operator: Operator, page: Any, console: ConsoleServer
) -> None:
    with operator.ledger() as ledger:
        ledger.upsert_task("job-live", status="processing", progress=5.0, prompt="a slow render")
        page.goto(f"{console.url}/jobs")
        bar = page.locator('#jobs-body tr[data-task="job-live"] progress')
        assert bar.evaluate("b => b.value") == 5
        ledger.upsert_task("job-live", status="processing", progress=64.0)
        page.wait_for_function(
            "() => document.querySelector('#jobs-body tr[data-task=\"job-live\"] progress')?.value === 64"
        )
        screenshot(page, "jobs-live")
        ledger.upsert_task("job-live", status="completed", progress=100.0)
        page.wait_for_function("() => document.getElementById('jobs-count').textContent === '0'")

    page.goto(f"{console.url}/")
    page.wait_for_timeout(300)  # the audit feed is connected
    with ImagineService.create(operator.settings(daily_cap="0.3")) as service:  # 0.25 of 0.3: past 80 %
        outcome = service.generate("a warning shot", duration=2, wait=False)
    assert outcome.warnings and "past 80 %" in outcome.warnings[0]
    toast = page.locator('#toasts div[data-code="daily_80"]')
    toast.wait_for()
    assert "the daily budget is past 80 %" in toast.inner_text()
    screenshot(page, "warning-toast")


def test_scenario_c_against_a_running_sandbox_approved_from_the_page(browser: Any, tmp_path: Path) -> None:
    """Issue 20 (c) end to end: the README's bot against a sandbox server that says it is the sandbox queues its
    payment in the sandbox books; the console of the same shell (no flag) shows it, approves it from the page,
    and the bot pays once and posts once."""
    from imagine_agent.books import Books
    from imagine_agent.config import Settings
    from imagine_agent.ledger import open_ledger
    from imagine_agent.sandbox import SandboxConfig, SandboxServer
    from imagine_agent.x402 import PrivateKeySigner
    from tests.embedded import subprocess_env

    data = tmp_path / "data"
    inbox, outbox = tmp_path / "inbox.jsonl", tmp_path / "outbox.jsonl"
    inbox.write_text(
        json.dumps({"id": "r1", "from": "@ana", "text": "a lantern drifting on a lake", "duration": 2}) + "\n"
    )
    env = subprocess_env(
        data,
        IMAGINE_PRIVATE_KEY=PrivateKeySigner.generate().export_private_key(),
        IMAGINE_APPROVAL_THRESHOLD="0.1",
        IMAGINE_POLL_FIRST="0.05",
        IMAGINE_POLL_FLOOR="0.05",
        IMAGINE_POLL_CAP="0.2",
    )
    settings = Settings(data_dir=data)  # `imagine-agent console` in that shell: no IMAGINE_BASE_URL, no flag
    with (
        SandboxServer(SandboxConfig(speed=150)) as sandbox,
        Books(settings) as books,
        ConsoleServer(books, settings) as console,
    ):
        bot = subprocess.Popen(
            [
                PYTHON,
                BOT,
                "--base-url",
                sandbox.url,
                "--inbox",
                str(inbox),
                "--outbox",
                str(outbox),
                "--follow",
                "--poll",
                "0.2",
            ],
            env=env,
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=(tmp_path / "bot.log").open("w"),
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            page.goto(console.login_url)
            with open_ledger(data / "sandbox-ledger.sqlite3") as demo:
                (entry,) = _until(lambda: demo.approvals(), "the bot to queue its payment")
                assert (entry.state, entry.amount, entry.requester) == (ApprovalState.AWAITING, 250_000, "social-bot")
                page.goto(f"{console.url}/approvals")
                row = page.locator(f'#approvals tr[data-id="{entry.id}"]')
                assert row.get_attribute("data-state") == "awaiting_approval"
                assert row.locator('[data-books="sandbox"]').count() == 1  # labelled
                screenshot(page, "scenario-c-approvals")
                page.click(f"#approve-{entry.id}")
                _until(lambda: outbox.exists() and outbox.read_text().splitlines(), "the bot to post", 60)
                assert demo.get_approval(entry.id).state is ApprovalState.USED
                time.sleep(0.6)  # more passes: nothing is posted or paid again
                assert [(p.state, p.amount) for p in demo.payments()] == [(PaymentState.PAID, 250_000)]
            page.goto(f"{console.url}/receipts")
            assert page.locator("#receipt-count").inner_text() == "1"
            page.goto(f"{console.url}/videos")
            screenshot(page, "scenario-c-videos")
        finally:
            context.close()
            os.kill(bot.pid, signal.SIGTERM)
            out, _ = bot.communicate(timeout=60)
        settlements = httpx.get(f"{sandbox.url}/_admin/settlements").json()
    log = (tmp_path / "bot.log").read_text()
    assert bot.returncode == 0, log
    assert json.loads(out.splitlines()[-1])["posted"] == 1
    posts = outbox.read_text().splitlines()
    assert len(posts) == 1 and len(settlements) == 1 and settlements[0]["taskId"] == json.loads(posts[0])["taskId"]
