"""The CLI never lies or crashes (issue 12): one JSON object per outcome, documented exit codes, no traceback,
ledger commands on the operator's ledger without a key, sandbox money apart from real money."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import imagine_agent
from imagine_agent.cli import app
from imagine_agent.ledger import open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from tests.embedded import sandbox_url

pytestmark = pytest.mark.e2e
KEY = "0x" + "7e" * 32
FAST = {
    "IMAGINE_POLL_FIRST": "0.02",
    "IMAGINE_POLL_FLOOR": "0.02",
    "IMAGINE_POLL_CAP": "0.2",
    "IMAGINE_SANDBOX_SPEED": "600",
}


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up while the answer is written (the CLI gave up waiting) is expected here: without
    this, socketserver prints the BrokenPipeError to the stderr the CLI runner captures, a false "Traceback"."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Recorder:
    """A loopback HTTP server in front of a sandbox (or answering ``canned`` itself) that records every
    X-PAYMENT header that arrives: "nothing was sent" is asserted where the money would have gone."""

    def __init__(self, target: str | None = None, canned: tuple[int, bytes] | None = None) -> None:
        self.payments: list[str] = []
        self.requests = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                recorder.requests += 1
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("x-payment"):
                    recorder.payments.append(self.headers["x-payment"])
                if canned is not None:
                    status, content, headers = canned[0], canned[1], {"content-type": "application/json"}
                else:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
                    try:
                        answer = httpx.request(
                            self.command, f"{target}{self.path}", content=body, headers=headers, timeout=10
                        )
                    except httpx.TransportError:  # the sandbox behind it has stopped (a request still in flight
                        # when the test ends): answer as a gateway does, not with a traceback on stderr
                        self.send_error(502)
                        return
                    status, content = answer.status_code, answer.content
                    headers = {
                        k: v
                        for k, v in answer.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
                    }
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def real_api() -> Iterator[tuple[SandboxServer, Recorder]]:
    """A stand-in for the real Imagine API on loopback: it does not claim to be the sandbox."""
    with SandboxServer(SandboxConfig(speed=600, announce_sandbox=False)) as server:
        recorder = Recorder(server.url)
        yield server, recorder
        recorder.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the CLI in-process with only the given IMAGINE_* settings (isolated_environment drops the shell's)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, **env: str) -> Any:
        result = runner.invoke(
            app, list(args), env={"IMAGINE_DATA_DIR": str(tmp_path / "data"), **FAST, **env}, catch_exceptions=False
        )
        assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
        return result

    return invoke


def one_object(result: Any) -> dict[str, Any]:
    """stdout is exactly one JSON object carrying ``sandbox`` (and, for an error, its exit code)."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    body: dict[str, Any] = json.loads(lines[0])
    assert isinstance(body, dict) and isinstance(body["sandbox"], bool), body
    if "error" in body:
        assert body["exitCode"] == result.exit_code and body["message"]
    return body


# ------------------------------------------------------------------------------ 12.1 the kill switch


def test_kill_switch_without_base_url_or_key_stops_a_real_payment_until_unfreeze(
    cli: Callable[..., Any], real_api: tuple[SandboxServer, Recorder], tmp_path: Path
) -> None:
    server, recorder = real_api
    frozen = cli("budget", "--freeze", "--json")  # no IMAGINE_BASE_URL, no key, no password
    assert frozen.exit_code == 0
    body = one_object(frozen)  # the embedded sandbox's books come first; the one switch stops both (rule 8)
    assert body["frozen"] is True and body["sandbox"] is True and body["otherBooks"]["books"] == "real"
    with open_ledger(tmp_path / "data" / "ledger.sqlite3") as ledger:  # the ledger real payments use
        assert ledger.is_frozen()

    refused = cli("generate", "a paper boat", "--json", IMAGINE_BASE_URL=recorder.url, IMAGINE_PRIVATE_KEY=KEY)
    assert refused.exit_code == 3 and one_object(refused)["error"] == "WalletFrozenError"
    assert recorder.payments == [] and server.state.settlements() == []  # nothing was sent

    text = cli("budget", "--real")
    assert "FROZEN" in text.stdout and "real money" in text.stdout
    assert one_object(cli("budget", "--unfreeze", "--json"))["frozen"] is False
    paid = cli(
        "generate",
        "a paper boat",
        "--json",
        "-o",
        str(tmp_path / "out"),
        IMAGINE_BASE_URL=recorder.url,
        IMAGINE_PRIVATE_KEY=KEY,
    )
    assert paid.exit_code == 0, paid.stdout + paid.stderr
    assert one_object(paid)["sandbox"] is False and len(recorder.payments) == 1
    real = one_object(cli("budget", "--json", "--real"))
    assert real["spent"] == "1000000" and real["spentUsdc"] == "1" and real["sandbox"] is False
    followed = one_object(cli("budget", "--json", IMAGINE_BASE_URL=recorder.url))  # the books follow the API
    assert followed["spent"] == "1000000" and followed["sandbox"] is False


def test_the_kill_switch_also_stops_the_embedded_sandbox(cli: Callable[..., Any], tmp_path: Path) -> None:
    assert cli("budget", "--freeze").exit_code == 0
    refused = cli("generate", "demo", "--json", "-o", str(tmp_path / "out"))
    assert refused.exit_code == 3 and one_object(refused) == {
        **one_object(refused),
        "error": "WalletFrozenError",
        "sandbox": True,
    }
    cli("budget", "--unfreeze")
    assert cli("generate", "demo", "--json", "-o", str(tmp_path / "out")).exit_code == 0


def test_ledger_commands_use_the_ledger_url_and_need_no_key(cli: Callable[..., Any], tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared" / "fleet.sqlite3"
    keystore_env = {"IMAGINE_LEDGER_URL": str(elsewhere), "IMAGINE_KEYSTORE": str(tmp_path / "missing.json")}
    assert cli("budget", "--freeze", "--json", **keystore_env).exit_code == 0
    with open_ledger(elsewhere) as ledger:
        assert ledger.is_frozen()
    for command in (
        ["receipts", "--json", "--real"],
        ["reconcile", "--json", "--real"],
        ["budget", "--json", "--real"],
    ):
        result = cli(*command, **keystore_env, IMAGINE_RPC_URL="http://127.0.0.1:9")
        assert result.exit_code == 0 and one_object(result)["sandbox"] is False
    address = "0x" + "ab" * 20
    assert one_object(cli("budget", "--json", "--address", address, **keystore_env))["address"] == address


# ---------------------------------------------------------------------- 12.2 sandbox money is not real


def test_a_payment_to_a_loopback_imagine_agent_sandbox_leaves_the_real_budget_untouched(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "imagine_agent.cli", "sandbox", "--port", "0", "--speed", "600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = sandbox_url(sandbox)
        paid = cli(
            "generate",
            "demo money",
            "--json",
            "-o",
            str(tmp_path / "out"),
            IMAGINE_BASE_URL=url,
            IMAGINE_PRIVATE_KEY=KEY,
        )
        assert paid.exit_code == 0, paid.stdout + paid.stderr
        assert one_object(paid)["sandbox"] is True
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)
    real = one_object(cli("budget", "--json", "--real"))
    assert (real["spent"], real["reserved"], real["unknown"], real["sandbox"]) == ("0", "0", "0", False)
    assert real["remaining"]["daily"] == real["caps"]["daily"]
    assert real["otherBooks"]["spent"] == "1000000" and real["otherBooks"]["books"] == "sandbox"  # shown apart
    assert one_object(cli("receipts", "--json", "--real"))["payments"] == []
    demo = one_object(cli("budget", "--sandbox", "--json"))
    assert demo["spent"] == "1000000" and demo["sandbox"] is True
    (row,) = one_object(cli("receipts", "--sandbox", "--json"))["payments"]
    assert row["sandbox"] is True and row["origin"] == url and row["amountUsdc"] == "1"
    assert "sandbox" in cli("receipts", "--sandbox").stdout and "1.000000 USDC" in cli("receipts", "--sandbox").stdout


def test_the_sandbox_claim_is_believed_from_loopback_only() -> None:
    """A hostile remote server cannot move real payments into the sandbox windows by claiming to be one."""
    from imagine_agent.origin import claims_sandbox

    headers = {"X-Imagine-Sandbox": "1"}
    assert claims_sandbox(headers, "http://127.0.0.1:8402/generation/create")
    assert claims_sandbox(headers, "http://localhost:8402/x") and claims_sandbox(headers, "http://[::1]:1/x")
    for remote in (
        "https://eliza.getimagine.club/generation/create",
        "http://10.0.0.1/x",
        "http://127.0.0.1.nip.io/",
        "http://0.0.0.0/x",
    ):
        assert not claims_sandbox(headers, remote), remote


def test_the_embedded_sandbox_keeps_its_history_apart(cli: Callable[..., Any], tmp_path: Path) -> None:
    made = cli("generate", "embedded demo", "--json", "-o", str(tmp_path / "out"))
    assert made.exit_code == 0 and one_object(made)["sandbox"] is True
    assert one_object(cli("receipts", "--json", "--real"))["payments"] == []
    assert len(one_object(cli("receipts", "--sandbox", "--json"))["payments"]) == 1
    reconciled = cli("reconcile", "--json", "--real", IMAGINE_RPC_URL="http://127.0.0.1:9")  # the real ledger
    assert reconciled.exit_code == 0 and one_object(reconciled) == {"changed": [], "sandbox": False}


# ------------------------------------------------------------------------ 12.3-12.6 every outcome


def test_usage_error_is_one_json_object(cli: Callable[..., Any]) -> None:
    result = cli("quote", "a cat", "--duration", "abc", "--json")
    assert result.exit_code == 2
    body = one_object(result)
    assert body["error"] == "UsageError" and "--duration" in body["message"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"IMAGINE_BASE_URL": "eliza.getimagine.club"}, "IMAGINE_BASE_URL='eliza.getimagine.club'"),
        ({"IMAGINE_BASE_URL": "ftp://example.com"}, "IMAGINE_BASE_URL='ftp://example.com'"),
        ({"IMAGINE_DAILY_CAP": "lots"}, "IMAGINE_DAILY_CAP='lots'"),
        ({"IMAGINE_MAX_PER_CALL": "0.0000001"}, "IMAGINE_MAX_PER_CALL"),
        ({"IMAGINE_CONFIG": "/nonexistent/imagine.toml"}, "IMAGINE_CONFIG='/nonexistent/imagine.toml'"),
    ],
)
def test_configuration_mistakes_name_the_variable_and_echo_the_value(
    cli: Callable[..., Any], env: dict[str, str], needle: str
) -> None:
    for command in (["quote", "x", "--json"], ["budget", "--json"], ["receipts", "--json"]):
        result = cli(*command, **env)
        assert result.exit_code == 2
        body = one_object(result)
        assert body["error"] == "ConfigurationError" and needle in body["message"], body["message"]
        text = cli(*command[:-1], **env)
        assert text.exit_code == 2 and text.stdout == "" and "ConfigurationError" in text.stderr


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("max_per_cal = 3\n", "max_per_cal"),
        ("[imagine]\ndaily_cap = 3\n", "imagine"),
        ("IMAGINE_DAILY_CAP = 3\n", "IMAGINE_DAILY_CAP"),
    ],
)
def test_an_unknown_toml_key_is_an_error_naming_it_and_the_valid_ones(
    cli: Callable[..., Any], tmp_path: Path, toml: str, key: str
) -> None:
    (tmp_path / "imagine.toml").write_text(toml)
    result = cli("budget", "--json")
    assert result.exit_code == 2
    message = one_object(result)["message"]
    assert f"unknown key '{key}'" in message and "daily_cap" in message and "max_per_call" in message


def test_empty_imagine_variables_mean_unset(cli: Callable[..., Any]) -> None:
    result = cli(
        "quote", "a cat", "--duration", "4", "--json", IMAGINE_BASE_URL="", IMAGINE_DAILY_CAP="", IMAGINE_PRIVATE_KEY=""
    )
    assert result.exit_code == 0
    body = one_object(result)
    assert body["sandbox"] is True and body["amount"] == "500000" and body["amountUsdc"] == "0.5"


def test_secret_values_are_never_echoed(cli: Callable[..., Any]) -> None:
    result = cli("budget", "--json", IMAGINE_PRIVATE_KEY="0x1234-not-hex-secret", IMAGINE_RPC_URL="")
    assert "not-hex-secret" not in result.stdout + result.stderr
    pasted = "0x" + "5e" * 32  # the key pasted into the wrong variable as well: its value is not echoed there
    wrong = cli("budget", "--json", IMAGINE_PRIVATE_KEY=pasted, IMAGINE_DAILY_CAP=pasted)
    assert wrong.exit_code == 2 and "IMAGINE_DAILY_CAP" in one_object(wrong)["message"]
    assert pasted not in wrong.stdout + wrong.stderr and pasted[2:] not in wrong.stdout + wrong.stderr


def test_quote_over_a_cap_says_so_and_exits_3(
    cli: Callable[..., Any], real_api: tuple[SandboxServer, Recorder]
) -> None:
    _, recorder = real_api
    result = cli("quote", "pricey", "--max-per-call", "0.5", "--json", IMAGINE_BASE_URL=recorder.url)  # no key
    assert result.exit_code == 3
    body = one_object(result)
    assert body["allowed"] is False and "per-call cap" in body["refusal"] and body["amountUsdc"] == "1"
    assert recorder.payments == []
    text = cli("quote", "pricey", "--max-per-call", "0.5", IMAGINE_BASE_URL=recorder.url)
    assert text.exit_code == 3 and "within policy: NO" in text.stdout and "1.000000 USDC" in text.stdout


def test_quote_and_status_need_no_key(
    cli: Callable[..., Any], real_api: tuple[SandboxServer, Recorder], tmp_path: Path
) -> None:
    _, recorder = real_api
    keystore = {"IMAGINE_KEYSTORE": str(tmp_path / "keystore.json")}  # exists nowhere: never opened
    assert cli("quote", "free to ask", "--json", IMAGINE_BASE_URL=recorder.url, **keystore).exit_code == 0
    paid = one_object(
        cli("generate", "x", "--no-wait", "--json", IMAGINE_BASE_URL=recorder.url, IMAGINE_PRIVATE_KEY=KEY)
    )
    status = cli("status", paid["taskId"], "--json", IMAGINE_BASE_URL=recorder.url, **keystore)
    assert status.exit_code == 0 and one_object(status)["sandbox"] is False


@pytest.mark.parametrize("command", ["status", "wait", "download"])
def test_an_unknown_task_is_exit_5(
    cli: Callable[..., Any], real_api: tuple[SandboxServer, Recorder], tmp_path: Path, command: str
) -> None:
    _, recorder = real_api
    args = [command, "0d2c3a1e-0000-4000-8000-000000000000", "--json"]
    if command == "download":
        args += ["-o", str(tmp_path / "out")]
    result = cli(*args, IMAGINE_BASE_URL=recorder.url)
    assert result.exit_code == 5
    assert one_object(result)["error"] == "TaskNotFoundError"


@pytest.mark.parametrize("body", [b"not json at all", b'{"x402Version": 99, "accepts": []}'])
def test_an_unusable_402_is_refused_before_signing(cli: Callable[..., Any], body: bytes, tmp_path: Path) -> None:
    recorder = Recorder(canned=(402, body))
    try:
        for command in (["generate", "x", "--json", "-o", str(tmp_path / "out")], ["quote", "x", "--json"]):
            result = cli(*command, IMAGINE_BASE_URL=recorder.url, IMAGINE_PRIVATE_KEY=KEY)
            assert result.exit_code == 3, result.stdout
            assert one_object(result)["error"] == "PolicyViolationError"
        assert recorder.payments == []
    finally:
        recorder.close()


def test_network_failure_before_paying_is_6_not_4(cli: Callable[..., Any]) -> None:
    result = cli(
        "generate", "x", "--json", IMAGINE_BASE_URL=f"http://127.0.0.1:{_free_port()}", IMAGINE_PRIVATE_KEY=KEY
    )
    assert result.exit_code == 6 and one_object(result)["error"] == "ImagineConnectionError"


def test_a_network_failure_after_paying_is_4(
    cli: Callable[..., Any], real_api: tuple[SandboxServer, Recorder], tmp_path: Path
) -> None:
    server, recorder = real_api
    server.state.add_faults({"kind": "status_502_html", "match": "status", "times": -1})
    result = cli(
        "generate",
        "x",
        "--json",
        "-o",
        str(tmp_path / "out"),
        IMAGINE_BASE_URL=recorder.url,
        IMAGINE_PRIVATE_KEY=KEY,
        IMAGINE_WAIT_TIMEOUT="3",
    )
    assert len(recorder.payments) == 1 and len(server.state.settlements()) == 1  # paid, then the server failed
    assert result.exit_code == 4, result.stdout
    assert one_object(result)["exitCode"] == 4


@pytest.mark.parametrize("kind", ["file", "under a file"])
def test_an_output_path_that_cannot_hold_files_is_refused_before_paying(
    cli: Callable[..., Any], real_api: tuple[SandboxServer, Recorder], tmp_path: Path, kind: str
) -> None:
    server, recorder = real_api
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    output = blocker if kind == "file" else blocker / "videos"
    result = cli("generate", "x", "--json", "-o", str(output), IMAGINE_BASE_URL=recorder.url, IMAGINE_PRIVATE_KEY=KEY)
    assert result.exit_code == 2 and one_object(result)["error"] == "InvalidRequestError"
    assert recorder.payments == [] and server.state.settlements() == []


def test_rich_markup_in_anything_we_print_is_escaped(cli: Callable[..., Any], tmp_path: Path) -> None:
    bad_id = cli("status", "[/][red]x")
    assert bad_id.exit_code == 2 and "[/][red]x" in bad_id.stderr.replace("\n", "")
    made = cli("generate", "a [bold]neon[/] sign [/]", "-o", str(tmp_path / "out"))
    assert made.exit_code == 0 and "completed" in made.stdout


def test_progress_bars_appear_only_after_validation(cli: Callable[..., Any]) -> None:
    result = cli("generate", "x", "--duration", "0")
    assert result.exit_code == 2 and "━" not in result.stderr and "queued" not in result.stderr


def test_a_crash_is_one_json_object_and_exit_7(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from imagine_agent import books

    def broken(self: Any) -> Any:
        raise RuntimeError("simulated bug [/]")

    monkeypatch.setattr(books.Books, "budget", broken)
    result = cli("budget", "--json")
    assert result.exit_code == 7 and one_object(result)["error"] == "InternalError"
    text = cli("budget")
    assert text.exit_code == 7 and "simulated bug [/]" in text.stderr.replace("\n", " ")


def test_a_missing_extra_names_the_pip_command(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mcp" else real(name, *a))
    result = cli("mcp")
    assert result.exit_code == 2 and "pip install 'imagine-agent[mcp]'" in result.stderr.replace("\n", "")


def test_sandbox_on_a_busy_port_is_a_clear_error(cli: Callable[..., Any]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = cli("sandbox", "--port", str(port))
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1:" in result.stderr


def test_version(cli: Callable[..., Any]) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"imagine-agent {imagine_agent.__version__}"


def test_wallet_new_keystore_is_found_without_imagine_keystore(cli: Callable[..., Any], tmp_path: Path) -> None:
    made = cli("wallet", "new", "--json", IMAGINE_KEYSTORE_PASSWORD="correct horse")
    assert made.exit_code == 0
    address = one_object(made)["address"]
    assert one_object(cli("wallet", "address", "--json"))["address"] == address  # no password, no IMAGINE_KEYSTORE
    assert one_object(cli("budget", "--json", "--real"))["address"] == address


# ------------------------------------------------------------------ 12.5 no traceback, for any command


@functools.cache
def _commands() -> list[tuple[list[str], Any]]:
    from typer.main import get_command

    root = get_command(app)
    found = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found += [([name, sub], cmd) for sub, cmd in subcommands.items()]
        else:
            found.append(([name], command))
    return found


def test_every_option_and_argument_has_help() -> None:
    for path, command in _commands():
        for param in command.params:
            assert getattr(param, "help", None), f"{' '.join(path)} {param.name} has no help text"


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=" ".join)
def test_every_command_with_bad_input_ends_cleanly(cli: Callable[..., Any], path: list[str], tmp_path: Path) -> None:
    command = dict((tuple(p), c) for p, c in _commands())[tuple(path)]
    arguments = ["[/]" for p in command.params if p.param_type_name == "argument" and p.required]
    unknown = cli(*path, *arguments, "--no-such-option[/]")
    assert unknown.exit_code == 2 and "--no-such-option[/]" in unknown.stderr
    if path == ["sandbox"]:
        broken = cli(*path, "--faults", str(tmp_path / "missing.toml"))
    elif path == ["devnet"]:  # reads no settings: a bad option value instead (it must not start a chain)
        broken = cli(*path, "--network", "[/]")
    else:
        broken = cli(*path, *arguments, IMAGINE_BASE_URL="ftp://[/]", IMAGINE_DAILY_CAP="[red]lots")
    assert broken.exit_code == 2, broken.stdout + broken.stderr
    if any(p.name == "as_json" for p in command.params):
        as_json = cli(*path, *arguments, "--json", IMAGINE_BASE_URL="ftp://[/]")
        assert as_json.exit_code == 2 and one_object(as_json)["exitCode"] == 2


@pytest.mark.parametrize(
    "args",
    [
        ["quote", "x", "--duration", "abc", "--json"],
        ["budget", "--json"],
        ["receipts", "--limit", "-1", "--json"],
        ["mcp", "--transport", "bogus"],
        ["sandbox", "--speed", "0"],
        ["generate", "x", "--json"],
        ["nope", "--json"],
    ],
)
def test_the_installed_command_never_prints_a_traceback(tmp_path: Path, args: list[str]) -> None:
    env = dict(os.environ)  # the autouse isolated_environment dropped IMAGINE_*
    env.update({"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_BASE_URL": "ftp://nowhere"})
    done = subprocess.run(
        [sys.executable, "-m", "imagine_agent.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    if "--json" in args:
        assert json.loads(done.stdout)["exitCode"] == 2


# ------------------------------------------------------------------------------------------ helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_chat_exits_3_when_a_refusal_stopped_the_purchase(cli: Callable[..., Any]) -> None:
    refused = cli("chat", "make a video of a cat", "--json", IMAGINE_MAX_PER_CALL="0.1")
    assert refused.exit_code == 3, refused.stdout + refused.stderr
    body = one_object(refused)
    assert body["code"] == "per_call_cap" and body["exitCode"] == 3 and body["paid"] is None
    text = cli("chat", "make a video of a cat", IMAGINE_MAX_PER_CALL="0.1")
    assert text.exit_code == 3 and "refused (per_call_cap)" in text.stderr
    bought = cli("chat", "make a video of a cat", "--json")
    assert bought.exit_code == 0, bought.stdout + bought.stderr
    assert one_object(bought)["taskId"] and "code" not in one_object(bought)
