"""Operator settings: environment (``IMAGINE_*``), an optional ``imagine.toml``, then defaults.

Caps live here and nowhere else: no tool or agent argument can raise them (money-safety rule 5).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_core import from_json
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .money import parse_usdc

SANDBOX_NOTICE = "SANDBOX: embedded local Imagine API, throwaway wallet, no real money moves."

__all__ = [
    "IMAGINE_PAY_TO",
    "SANDBOX_NOTICE",
    "AutoClankPolicy",
    "Settings",
    "default_data_dir",
    "load_settings",
    "settings_problem",
]

IMAGINE_PAY_TO = "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"
AutoClankPolicy = Literal["never", "ask", "agent", "always"]


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("imagine-agent", appauthor=False))


def _config_file() -> Path:
    return Path(os.environ.get("IMAGINE_CONFIG") or "imagine.toml")


# Fields whose values are never echoed in an error: keys, passwords, and URLs that may carry credentials.
_SECRET_FIELDS = frozenset({"private_key", "keystore_password", "ledger_url", "rpc_url"})


class Settings(BaseSettings):
    """Everything an operator can set. Amounts are decimal USDC strings here, atomic ints after."""

    # extra="forbid": an unknown key in imagine.toml (a typo, a section, an IMAGINE_ name) is an error, not
    # silently a default cap. Unrelated IMAGINE_* environment variables are not affected. An empty
    # IMAGINE_* variable means unset.
    model_config = SettingsConfigDict(
        env_prefix="IMAGINE_", extra="forbid", validate_default=True, env_ignore_empty=True
    )

    base_url: str | None = Field(None, description="Imagine API base URL; unset = the embedded sandbox")
    private_key: SecretStr | None = Field(None, description="0x hex secp256k1 key of the paying wallet")
    keystore: Path | None = Field(None, description="eth-account keystore JSON file of the paying wallet")
    keystore_password: SecretStr | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    ledger_url: str | None = Field(None, description="postgresql://… to share a budget; default SQLite in data_dir")

    max_per_call: Decimal = Decimal("5")
    daily_cap: Decimal = Decimal("20")
    total_cap: Decimal = Decimal("100")
    session_cap: Decimal | None = None
    rate_per_minute: int | None = 10
    approval_threshold: Decimal | None = Decimal("2")
    approval_ttl: float = Field(3600.0, gt=0, description="seconds a queued or granted approval stays valid")

    # NoDecode: from the environment these are comma-separated (IMAGINE_NETWORKS=base,base-sepolia), see _csv.
    networks: Annotated[list[str], NoDecode] = ["base"]
    pay_to: Annotated[list[str], NoDecode] = [IMAGINE_PAY_TO]
    max_validity_seconds: int = 600
    allow_private_image_urls: bool = False
    # None: a download may touch a private host only when the API base URL is one (a local sandbox).
    allow_private_downloads: bool | None = None
    template_data_as_string: bool = True
    rpc_url: str | None = None

    timeout: float = 30.0
    max_download_mb: int = 512
    poll_first: float = 15.0
    poll_floor: float = 1.0
    poll_cap: float = 15.0
    wait_timeout: float = 900.0

    auto_clank: AutoClankPolicy = "never"
    mcp_wait_seconds: float = Field(45.0, gt=0, le=3600, description="longest an MCP tool call waits for a render")
    mcp_token: SecretStr | None = Field(None, description="bearer token of the streamable-http MCP transport")
    mcp_approvals: Literal["elicit", "queue"] = Field(
        "elicit",
        description="elicit: a person answers over MCP elicitation (recorded with the client's name); "
        "queue: every MCP approval waits in the operator's approvals queue, whatever the client answers",
    )
    model: str | None = Field(None, description="LangChain chat model for the agent (e.g. gpt-4o-mini)")
    sandbox_speed: float = 30.0

    @field_validator("max_per_call", "daily_cap", "total_cap", "session_cap", "approval_threshold")
    @classmethod
    def _usdc(cls, v: Decimal | None) -> Decimal | None:
        if v is not None:
            parse_usdc(v)
        return v

    @field_validator("private_key")
    @classmethod
    def _private_key(cls, v: SecretStr | None) -> SecretStr | None:
        """A malformed key is an error on every path, the embedded sandbox's too (it never pays with it, but
        the operator meant to set one). Checked by shape here, without the crypto libraries; never echoed."""
        if v is not None:
            problem = _key_problem(v.get_secret_value())
            if problem is not None:
                raise ValueError(problem)
        return v

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            if not v:
                return None  # empty means unset: the embedded sandbox
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(v)
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                raise ValueError("not a URL (write it like https://eliza.getimagine.club)") from None
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host, like https://eliza.getimagine.club")
            return v.rstrip("/")
        return v

    @field_validator("networks", "pay_to", mode="before")
    @classmethod
    def _csv(cls, v: Any) -> Any:
        if isinstance(v, str) and v.lstrip().startswith("["):  # a JSON list, as pydantic-settings would take it
            try:
                return from_json(v)  # depth-capped, unlike json.loads
            except ValueError:
                raise ValueError("expected a comma-separated list or a JSON list") from None
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if os.environ.get("IMAGINE_CONFIG") and not config_file.is_file():
            from .errors import ConfigurationError

            raise ConfigurationError(
                f"IMAGINE_CONFIG={str(config_file)[:200]!r} is not a file: fix the path or unset it"
            )
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    def atomic(self, name: str) -> int | None:
        """A cap as atomic USDC units (None when unset)."""
        value = getattr(self, name)
        return None if value is None else parse_usdc(value)

    def __repr_args__(self) -> Any:
        """Like pydantic's, but a ledger URL without its password and an RPC URL as scheme + host."""
        from .redact import redact_url

        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in ("ledger_url", "rpc_url") else value

    @property
    def ledger_location(self) -> str:
        return self.ledger_url or str(self.data_dir / "ledger.sqlite3")


# secp256k1's group order: a private key is an integer in [1, n-1].
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _key_problem(text: str) -> str | None:
    """What is wrong with a private key written as hex (None: it is a usable secp256k1 key). Never the key."""
    digits = text.strip().removeprefix("0x").removeprefix("0X")
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        return (
            "not a private key: expected 32 bytes of hex (64 hex digits, optionally 0x-prefixed); fix it or unset "
            "it (an encrypted key: IMAGINE_KEYSTORE)"
        )
    if not 0 < int(digits, 16) < _SECP256K1_ORDER:
        return "not a valid secp256k1 private key (zero or beyond the curve order); fix it or unset it"
    return None


def load_settings(**overrides: Any) -> Settings:
    """``Settings(**overrides)``, with every mistake as one ``ConfigurationError`` saying what to fix."""
    from .errors import ConfigurationError

    try:
        return Settings(**overrides)
    except ConfigurationError:
        raise
    except (ValueError, OSError, RecursionError) as exc:  # ValidationError, TOMLDecodeError, SettingsError...
        raise ConfigurationError(settings_problem(exc, overrides)) from None


def settings_problem(exc: Exception, overrides: dict[str, Any] | None = None) -> str:
    """What is wrong with the settings: each field by the name the operator wrote (env var, TOML key or
    flag) with its value echoed, short, unless it may be a secret."""
    import tomllib

    from pydantic import ValidationError

    config = str(_config_file())
    # A value is never echoed when it is, or holds, a secret given elsewhere (a key pasted in the wrong variable).
    secrets = [
        str(v)
        for v in (
            *(os.environ.get(f"IMAGINE_{f.upper()}") for f in _SECRET_FIELDS),
            *((overrides or {}).get(f) for f in _SECRET_FIELDS),
        )
        if v
    ]
    if isinstance(exc, ValidationError):
        problems = []
        valid = ", ".join(sorted(Settings.model_fields))
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "extra_forbidden":
                hint = ""
                if name.upper().startswith("IMAGINE_"):
                    hint = f" (in a TOML file write {name[8:].lower()} = ...)"
                problems.append(f"unknown key {name[:60]!r} in {config}{hint}; valid keys: {valid}")
                continue
            message = str(err["msg"]).removeprefix("Value error, ")
            if overrides and name in overrides:
                where = f"--{name.replace('_', '-')}"
            elif os.environ.get(f"IMAGINE_{name.upper()}"):
                where = f"IMAGINE_{name.upper()}"
            else:
                where = f"{name} in {config}"
            raw = str(err.get("input"))
            hidden = name in _SECRET_FIELDS or any(secret in raw or raw in secret for secret in secrets)
            shown = "" if hidden else f"={_short(err.get('input'))}"
            problems.append(f"{where}{shown}: {message}")
        return "invalid settings: " + "; ".join(problems)
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"{config} is not valid TOML: {exc}"
    return f"cannot read the settings from the IMAGINE_* environment variables or {config}: {type(exc).__name__}: {exc}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
