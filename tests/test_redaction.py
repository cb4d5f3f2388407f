"""Issue 11 rules 10 and 11: no database password or RPC key in any repr or message; approval text is inert."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from imagine_agent.config import Settings
from imagine_agent.errors import ConfigurationError
from imagine_agent.ledger import open_ledger
from imagine_agent.redact import inert, redact_text, redact_url
from imagine_agent.service import ImagineService
from imagine_agent.tools.context import ImagineContext
from imagine_agent.wallet import ApprovalRequest

PG = "postgresql://payer:pg-s3cret-pw@db.internal:5433/ledger?sslpassword=also-secret"
RPC = "https://base-mainnet.example-rpc.io/v2/rpc-KEY-abc123?apikey=rpc-KEY-2"
SECRETS = ("pg-s3cret-pw", "also-secret", "rpc-KEY-abc123", "rpc-KEY-2", "/v2/")


def clean(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


def test_redact_url_keeps_only_what_may_be_shown() -> None:
    assert redact_url(PG) == "postgresql://payer@db.internal:5433/ledger"
    assert redact_url(RPC) == "https://base-mainnet.example-rpc.io"
    assert redact_url("http://user:pw@[::1]:8545/key") == "http://[::1]:8545"
    assert redact_url("/var/lib/ledger.sqlite3") == "/var/lib/ledger.sqlite3"
    assert redact_url("postgresql://u:p@host:notaport/db") == "<malformed URL>"
    assert clean(redact_text(f"cannot reach {RPC} or {PG}", RPC, PG))


def test_settings_repr_and_str_hide_the_ledger_password_and_rpc_key() -> None:
    settings = Settings(ledger_url=PG, rpc_url=RPC)
    for text in (repr(settings), str(settings), f"{settings!r}"):
        assert clean(text), text
        assert "db.internal" in text and "base-mainnet.example-rpc.io" in text  # still says where


def test_service_and_tool_context_reprs_hide_them(tmp_path: Path) -> None:
    settings = Settings(rpc_url=RPC, data_dir=tmp_path)  # embedded sandbox: no real money
    with ImagineService.create(settings) as service:
        service.settings = Settings(rpc_url=RPC, ledger_url=PG, data_dir=tmp_path)  # what a fleet runs with
        texts = [repr(service), str(service), repr(ImagineContext(service=service)), str(ImagineContext(service))]
    for text in texts:
        assert clean(text), text


def test_a_ledger_that_cannot_be_opened_names_it_without_the_password() -> None:
    url = "postgresql://payer:pg-s3cret-pw@127.0.0.1:1/ledger?connect_timeout=2"
    with pytest.raises(ConfigurationError) as info:
        open_ledger(url)
    assert clean(str(info.value)) and "127.0.0.1" in str(info.value)


def test_keystore_is_created_0600_in_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imagine_agent.cli import app

    def no_chmod(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the keystore existed with other permissions before a chmod")

    monkeypatch.setattr(Path, "chmod", no_chmod)
    monkeypatch.setattr(os, "chmod", no_chmod)
    old = os.umask(0)  # even with a permissive umask nobody else may read it, not for a moment
    try:
        path = tmp_path / "keystore.json"
        result = CliRunner().invoke(
            app,
            ["wallet", "new", "--keystore", str(path)],
            env={"IMAGINE_KEYSTORE_PASSWORD": "pw-1234567", "IMAGINE_DATA_DIR": str(tmp_path)},
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = CliRunner().invoke(
        app,
        ["wallet", "new", "--keystore", str(path)],
        env={"IMAGINE_KEYSTORE_PASSWORD": "pw-1234567", "IMAGINE_DATA_DIR": str(tmp_path)},
    )
    assert again.exit_code == 2  # never over an existing keystore


HOSTILE = "a cat\r\x1b[2K\x1b[1Apay 0.01 USDC to a friend \u202eDSU 0001\x07"


def test_approval_request_text_is_inert() -> None:
    shown = str(
        ApprovalRequest(
            2_500_000, "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96\x1b[8m", "base", "https://x/\rcreate", HOSTILE
        )
    )
    assert not any(ch in shown for ch in "\r\x1b\x07\u202e"), shown
    assert "\\x1b[2K" in shown and "2.500000" in shown
    assert inert("fine text") == "fine text"


def test_cli_confirm_shows_inert_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from imagine_agent import cli

    asked: list[str] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(cli._output._RUN, "as_json", False)  # a --json command run earlier in this process set it
    monkeypatch.setattr(typer, "confirm", lambda text, **kw: asked.append(text) or False)
    approve = cli._approver(False)
    assert (
        approve(ApprovalRequest(2_500_000, "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96", "base", "r", HOSTILE)) is False
    )
    (text,) = asked
    assert not any(ch in text for ch in "\r\x1b\x07\u202e"), text
