"""What an operator must see (issue 20 (h)): the wallet the console governs, its USDC balance from the RPC
(a real anvil chain with Circle's USDC), the API and network it pays, both books labelled and counted apart,
and a playable video wherever it was downloaded (the ledger keeps absolute paths; old relative rows still
resolve where they can)."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from imagine_agent.books import Books
from imagine_agent.config import Settings
from imagine_agent.console import ConsoleServer
from imagine_agent.ledger import Caps, Ledger, open_ledger

USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
MP4 = b"\x00\x00\x00\x18ftypmp42"


def _paid(ledger: Ledger, tag: str, amount: int, *, sandbox: bool) -> None:
    record = ledger.reserve(
        request_hash=tag,
        amount=amount,
        asset=USDC_BASE,
        network="base",
        pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
        payer="0x" + "1" * 40,
        resource="http://127.0.0.1:8402/generation/create",
        caps=Caps(per_call=5_000_000),
        sandbox=sandbox,
    )
    ledger.journal_authorization(
        record.id, nonce="0x" + tag.encode().hex().ljust(64, "0"), valid_before=int(time.time()) + 600, header="h"
    )
    ledger.mark_paid(record.id, task_id=f"task-{tag}", transaction="0x" + "ab" * 32)


def _login(server: ConsoleServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    assert client.get(f"/?token={server.token}").status_code == 303
    return client


def test_the_ledger_keeps_absolute_download_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_ledger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.upsert_task("t1", status="completed", video_path="imagine-output/t1.mp4")
        stored = ledger.get_task("t1")
    assert stored is not None and stored.video_path == str(tmp_path / "imagine-output" / "t1.mp4")


def test_the_console_shows_wallet_balance_api_network_and_both_books(tmp_path: Path) -> None:
    from imagine_agent.devnet import Devnet, install_dir

    if not (install_dir() / ".installed").is_file():
        if os.environ.get("CI"):
            pytest.fail("the devnet's npm packages are not installed: run .ci/setup-chain.sh")
        pytest.skip("the devnet's npm packages are not installed: run .ci/setup-chain.sh")
    data = tmp_path / "data"
    data.mkdir()
    with open_ledger(data / "ledger.sqlite3") as real:
        _paid(real, "real-one", 1_000_000, sandbox=False)
    with open_ledger(data / "sandbox-ledger.sqlite3") as demo:
        _paid(demo, "demo-one", 250_000, sandbox=True)
        _paid(demo, "demo-two", 250_000, sandbox=True)
    with Devnet(payers=1) as net:
        payer = net.payers[0]
        settings = Settings(
            data_dir=data, base_url="https://eliza.getimagine.club", private_key=payer.private_key, rpc_url=net.rpc_url
        )
        with Books(settings) as books, ConsoleServer(books, settings) as server:
            client = _login(server)
            page = client.get("/").text
    assert re.search(rf'id="wallet-address">{payer.address}<', page)
    assert "100.000000 USDC on base" in page  # read from the chain
    assert 'id="api">https://eliza.getimagine.club<' in page and 'id="network">base<' in page
    assert 'id="books">real books (real money)<' in page
    assert 'data-name="spent" data-atomic="1000000"' in page  # the real books, not added to the demo money
    other = page[page.index('id="other-books"') :]
    assert 'data-books="sandbox"' in other[:40] and "0.500000 USDC" in other and "<td class=num>2</td>" in other


def test_videos_play_wherever_they_were_downloaded(tmp_path: Path) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    (elsewhere / "t-abs.mp4").write_bytes(MP4)
    (data / "imagine-output").mkdir(parents=True)
    (data / "imagine-output" / "t-old.mp4").write_bytes(MP4)
    with open_ledger(data / "sandbox-ledger.sqlite3") as demo:  # the embedded sandbox's books
        demo.upsert_task("t-abs", status="completed", prompt="a fox", video_path=str(elsewhere / "t-abs.mp4"))
        demo.upsert_task("t-old", status="completed", prompt="a boat", video_path="x")
    with sqlite3.connect(data / "sandbox-ledger.sqlite3") as raw:  # a row written before paths were absolute
        raw.execute("UPDATE tasks SET video_path = 'imagine-output/t-old.mp4' WHERE task_id = 't-old'")
    settings = Settings(data_dir=data)
    with Books(settings) as books, ConsoleServer(books, settings) as server:
        client = _login(server)
        gallery = client.get("/videos").text
        assert 'src="/media/t-abs/video"' in gallery and 'src="/media/t-old/video"' in gallery
        assert client.get("/media/t-abs/video").content == MP4
        assert client.get("/media/t-old/video").content == MP4
