"""The console over real HTTP (uvicorn on loopback): the token, cross-site protection, nothing secret rendered,
files only by task id, live progress by server-sent events, and the approvals CLI."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from imagine_agent.config import Settings
from imagine_agent.console import ConsoleServer
from imagine_agent.console.pages import explorer_link, is_sandbox, redact_url
from imagine_agent.ledger import ApprovalState, Caps, Ledger, open_ledger
from tests.embedded import PYTHON, subprocess_env

USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
SECRET_HEADER = "eyJzZWNyZXQiOiAiYmVhcmVyIGluc3RydW1lbnQifQ=="


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    opened = open_ledger(tmp_path / "ledger.sqlite3")
    yield opened  # type: ignore[misc]
    opened.close()


@pytest.fixture
def console_server(ledger: Ledger, tmp_path: Path) -> ConsoleServer:
    settings = Settings(data_dir=tmp_path, rpc_url="https://user:pw@rpc.example/v2/SECRETKEY?key=abc")
    with ConsoleServer(ledger, settings) as running:
        yield running  # type: ignore[misc]


def _logged_in(server: ConsoleServer) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, timeout=30)
    first = client.get(f"/?token={server.token}")
    assert first.status_code == 303 and first.headers["location"] == "/"  # the token leaves the address bar
    page = client.get("/")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return client, match.group(1)


def _pay(
    ledger: Ledger,
    request_hash: str,
    *,
    resource: str = "https://eliza.getimagine.club/generation/create?sig=TOP",
    amount: int = 250_000,
    sandbox: bool = False,
) -> str:
    record = ledger.reserve(
        request_hash=request_hash,
        amount=amount,
        asset=USDC_BASE,
        network="base",
        pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
        payer="0x" + "1" * 40,
        resource=resource,
        caps=Caps(per_call=5_000_000),
        sandbox=sandbox,
    )
    ledger.journal_authorization(
        record.id,
        nonce="0x" + request_hash.encode().hex().ljust(64, "0"),
        valid_before=2_000_000_000,
        header=SECRET_HEADER,
    )
    ledger.mark_paid(record.id, task_id=f"task-{request_hash}", transaction="0x" + "ab" * 32)
    return record.id


def test_every_page_needs_the_token(console_server: ConsoleServer) -> None:
    for path in (
        "/",
        "/receipts",
        "/videos",
        "/jobs",
        "/unknown",
        "/approvals",
        "/audit",
        "/api/budget",
        "/events/jobs",
        "/media/x/video",
    ):
        assert httpx.get(console_server.url + path).status_code == 403, path
        assert httpx.get(console_server.url + path, cookies={"imagine_console": "wrong" * 8}).status_code == 403
    assert httpx.get(f"{console_server.url}/?token=not-the-token").status_code == 403
    assert (
        httpx.post(f"{console_server.url}/freeze?token={console_server.token}").status_code == 403
    )  # a token URL cannot POST


def test_posts_need_the_csrf_token_and_the_same_origin(console_server: ConsoleServer, ledger: Ledger) -> None:
    client, csrf = _logged_in(console_server)
    assert client.post("/freeze", data={}).status_code == 403
    assert client.post("/freeze", data={"csrf": "x" * 32}).status_code == 403
    assert client.post("/freeze", data={"csrf": csrf}, headers={"origin": "https://evil.example"}).status_code == 403
    assert client.post("/freeze", data={"csrf": csrf}, headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert client.post("/freeze", data={"csrf": csrf}, headers={"origin": "null"}).status_code == 403
    assert not ledger.is_frozen()
    done = client.post("/freeze", data={"csrf": csrf}, headers={"origin": console_server.url})
    assert done.status_code == 303 and ledger.is_frozen()
    assert "FROZEN" in client.get("/").text
    assert client.post("/unfreeze", data={"csrf": csrf}).status_code == 303 and not ledger.is_frozen()


def test_nothing_secret_is_rendered(console_server: ConsoleServer, ledger: Ledger) -> None:
    _pay(ledger, "a")
    ledger.record_event("refusal", "per_call_cap", "over the cap", amount=9_000_000)
    client, _ = _logged_in(console_server)
    for path in ("/", "/receipts", "/unknown", "/audit", "/approvals", "/videos", "/jobs"):
        text = client.get(path).text
        for secret in (SECRET_HEADER, "sig=TOP", "SECRETKEY", "key=abc", "pw@", console_server.token):
            assert secret not in text, (path, secret)
    receipts = client.get("/receipts").text
    assert "https://eliza.getimagine.club/generation/create" in receipts
    assert f'href="https://basescan.org/tx/0x{"ab" * 32}"' in receipts
    assert "https://rpc.example" in client.get("/unknown").text  # the RPC by scheme and host only
    assert client.get("/").headers["cache-control"] == "no-store"


def test_receipt_filters(console_server: ConsoleServer, ledger: Ledger) -> None:
    _pay(ledger, "real")
    _pay(ledger, "local", resource="http://127.0.0.1:8402/generation/create", sandbox=True)  # as recorded
    _pay(ledger, "stand-in", resource="http://127.0.0.1:8403/generation/create")  # loopback, yet real money
    client, _ = _logged_in(console_server)

    def count(query: str) -> int:
        found = re.search(r'id="receipt-count">(\d+)<', client.get(f"/receipts?{query}").text)
        assert found is not None
        return int(found.group(1))

    assert (count(""), count("origin=sandbox"), count("origin=real"), count("state=paid"), count("state=unknown")) == (
        3,
        1,
        2,
        3,
        0,
    )
    assert count("endpoint=http://127.0.0.1:8402/generation/create") == 1


def test_media_is_served_by_task_id_only(console_server: ConsoleServer, ledger: Ledger, tmp_path: Path) -> None:
    video = tmp_path / "videos" / "t1.mp4"
    video.parent.mkdir()
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    video.with_suffix(".png").write_bytes(b"\x89PNG\r\n")
    ledger.upsert_task("t1", status="completed", prompt="a fox", video_path=str(video))
    client, _ = _logged_in(console_server)
    assert client.get("/media/t1/video").content == video.read_bytes()
    assert client.get("/media/t1/preview").headers["content-type"] == "image/png"
    assert client.get("/media/nope/video").status_code == 404
    assert client.get("/media/..%2F..%2Fetc%2Fpasswd/video").status_code == 404
    assert client.get("/media/t1/..").status_code == 404
    assert 'src="/media/t1/video"' in client.get("/videos").text


def test_pending_jobs_stream_their_progress(console_server: ConsoleServer, ledger: Ledger) -> None:
    ledger.upsert_task("job-1", status="processing", progress=10.0, prompt="a boat")
    client, _ = _logged_in(console_server)
    seen: list[list[dict[str, object]]] = []

    def advance() -> None:
        ledger.upsert_task("job-1", status="processing", progress=55.0)

    with client.stream("GET", "/events/jobs") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
                if len(seen) == 1:
                    threading.Thread(target=advance).start()
                if len(seen) == 2:
                    break
    assert [s[0]["progress"] for s in seen] == [10.0, 55.0]


def test_deciding_from_the_page(console_server: ConsoleServer, ledger: Ledger) -> None:
    entry = ledger.request_approval(
        request_hash="h",
        amount=3_000_000,
        asset=USDC_BASE,
        network="base",
        pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
        resource="https://x/create",
        description="a fox <script>alert(1)</script>",
        requester="mcp",
        ttl=3600,
    )
    client, csrf = _logged_in(console_server)
    page = client.get("/approvals").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert client.post(f"/approvals/{entry.id}/deny", data={"csrf": csrf, "reason": "too dear"}).status_code == 303
    assert ledger.get_approval(entry.id).state is ApprovalState.DENIED
    again = client.post(f"/approvals/{entry.id}/approve", data={"csrf": csrf})
    assert again.status_code == 200 and 'id="decision-error"' in again.text  # a denial is final
    assert ledger.get_approval(entry.id).state is ApprovalState.DENIED


def test_helpers() -> None:
    assert redact_url("https://u:p@host:8443/a/b?token=1#f") == "https://host:8443/a/b"
    assert redact_url("javascript:alert(1)") == "javascript:…"
    assert is_sandbox("http://127.0.0.1:8402/generation/create") and not is_sandbox("https://eliza.getimagine.club/x")
    assert "sepolia.basescan.org/tx/0x" in explorer_link("base-sepolia", "0x" + "cd" * 32)
    assert "href" not in explorer_link("base", "0xnot-a-hash") and "href" not in explorer_link(
        "solana", "0x" + "1" * 64
    )


def test_approvals_cli(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path)
    with open_ledger(tmp_path / "ledger.sqlite3") as ledger:
        first = ledger.request_approval(
            request_hash="h1",
            amount=3_000_000,
            asset=USDC_BASE,
            network="base",
            pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
            resource="https://x/c",
            description="a fox",
            requester="social-bot",
            ttl=3600,
        )
        second = ledger.request_approval(
            request_hash="h2",
            amount=4_000_000,
            asset=USDC_BASE,
            network="base",
            pay_to="0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
            resource="https://x/c",
            description="a boat",
            requester="mcp",
            ttl=3600,
        )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "imagine_agent", "approvals", *args], env=env, capture_output=True, text=True, timeout=60
        )

    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["approvals"]
    assert [(r["id"], r["amount"], r["amountUsdc"], r["requester"]) for r in rows] == [
        (second.id, "4000000", "4.000000", "mcp"),
        (first.id, "3000000", "3.000000", "social-bot"),
    ]
    approved = cli("approve", first.id, "--json")
    assert approved.returncode == 0 and json.loads(approved.stdout)["approval"]["state"] == "approved"
    denied = cli("deny", second.id, "--reason", "not today", "--json")
    assert json.loads(denied.stdout)["approval"]["state"] == "denied"
    final = cli("approve", second.id, "--json")
    assert final.returncode == 2 and json.loads(final.stdout)["code"] == "already_decided"
    missing = cli("deny", "nope", "--json")
    assert missing.returncode == 2 and json.loads(missing.stdout)["code"] == "not_found"
    assert json.loads(cli("list", "--json").stdout)["approvals"] == []
    assert len(json.loads(cli("list", "--all", "--json").stdout)["approvals"]) == 2
    text = cli("list", "--all")
    assert "denied" in text.stdout and "approved" in text.stdout and "Traceback" not in text.stderr


def test_the_cli_reference_lists_every_refusal_code() -> None:
    from imagine_agent.errors import REFUSAL_CODES
    from tests.readme import page

    reference = page("cli.md")
    table = reference[reference.index("| refusal `code` | meaning |") :]
    listed = re.findall(r"^\| `(\w+)` \|", table.split("\n\n")[0], re.M)
    assert listed == list(REFUSAL_CODES)


def test_the_console_command_prints_its_token_url_and_serves_loopback(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [PYTHON, "-m", "imagine_agent", "console", "--port", "0"],
        env=subprocess_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{24,}", url), url
        base = url.split("/?")[0]
        assert httpx.get(base + "/").status_code == 403
        with httpx.Client() as client:
            assert client.get(url).status_code == 303
            assert "Budget" in client.get(base + "/").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
