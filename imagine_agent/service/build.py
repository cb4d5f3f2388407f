"""How the parts are found from settings: the paying key, the policy, the sandbox's books, a sandbox server.

Shared by the service (which pays) and the books (which only read and decide), so neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import ConfigurationError
from .ledger import Caps
from .origin import SANDBOX_HEADER, is_loopback
from .wallet import PaymentPolicy
from .x402 import PrivateKeySigner, Signer

__all__ = ["SIGNING_GRACE", "ReadOnlySigner", "claims_sandbox_server", "keystore_path", "load_signer", "policy_from",
           "public_address", "sandbox_ledger_location"]

SIGNING_GRACE = 120.0  # seconds a reservation may wait for its signature before it counts as abandoned


def keystore_path(settings: Settings) -> Path | None:
    """IMAGINE_KEYSTORE, else the keystore ``wallet new`` writes in the data dir when it exists."""
    if settings.keystore is not None:
        return settings.keystore
    found = settings.data_dir / "keystore.json"
    return found if found.is_file() else None


def public_address(settings: Settings) -> str | None:
    """The paying wallet's address without its password: from the key, or the keystore's address field."""
    if settings.private_key is not None:
        return PrivateKeySigner(settings.private_key.get_secret_value()).address
    path = keystore_path(settings)
    if path is None:
        return None
    try:
        address = json.loads(path.read_text()).get("address")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(address, str) or len(address.removeprefix("0x")) != 40:
        return None
    from .x402 import to_checksum_address

    try:
        return str(to_checksum_address("0x" + address.removeprefix("0x")))
    except ValueError:
        return None


class ReadOnlySigner:
    """The wallet of a command that never pays (quote, status, wait, download): no key, no password."""

    def __init__(self, address: str | None = None) -> None:
        self._address = address or "0x0000000000000000000000000000000000000000"

    @property
    def address(self) -> str:
        return self._address

    def sign_typed_data(self, typed_data: Any) -> bytes:
        raise ConfigurationError("this command does not pay, so it has no key to sign with")

    def __repr__(self) -> str:
        return f"ReadOnlySigner(address={self._address!r})"


def sandbox_ledger_location(settings: Settings) -> Path:
    """The sandbox's own ledger in the data dir: demo history stays visible, apart from the real ledger."""
    return settings.data_dir / "sandbox-ledger.sqlite3"


def claims_sandbox_server(base_url: str, timeout: float) -> bool:
    """A loopback server that answers with ``X-Imagine-Sandbox: 1``. Unreachable or remote: not a sandbox."""
    if not is_loopback(base_url):
        return False
    import httpx

    try:
        with httpx.Client(timeout=min(timeout, 5.0), trust_env=False) as probe:
            return bool(probe.get(base_url).headers.get(SANDBOX_HEADER, "").strip() == "1")
    except httpx.HTTPError:
        return False


def load_signer(settings: Settings, password_prompt: Callable[[], str] | None = None) -> Signer:
    """The paying key from IMAGINE_PRIVATE_KEY or an encrypted keystore. The key never leaves the signer."""
    if settings.private_key is not None:
        return PrivateKeySigner(settings.private_key.get_secret_value())
    keystore = keystore_path(settings)
    if keystore is not None:
        from eth_account import Account

        try:
            keyfile = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read keystore {keystore}: {type(exc).__name__}") from None
        if settings.keystore_password is not None:
            password = settings.keystore_password.get_secret_value()
        elif password_prompt is not None:
            password = password_prompt()
        else:
            raise ConfigurationError(f"the keystore {keystore} is encrypted and there is no terminal to ask its "
                                     "password: set IMAGINE_KEYSTORE_PASSWORD (or run the command in a terminal)")
        try:
            return PrivateKeySigner(bytes(Account.decrypt(keyfile, password)))
        except ValueError:
            raise ConfigurationError("the keystore password is wrong (or the keystore is damaged)") from None
    raise ConfigurationError(
        "no paying wallet: set IMAGINE_PRIVATE_KEY (0x hex) or IMAGINE_KEYSTORE, or create one with "
        "`imagine-agent wallet new`"
    )


def policy_from(settings: Settings) -> PaymentPolicy:
    caps = Caps(
        per_call=settings.atomic("max_per_call") or 0,
        daily=settings.atomic("daily_cap"),
        total=settings.atomic("total_cap"),
        session=settings.atomic("session_cap"),
        rate_per_minute=settings.rate_per_minute,
    )
    return PaymentPolicy(
        caps=caps,
        networks=frozenset(settings.networks),
        pay_to=frozenset(settings.pay_to),
        approval_threshold=settings.atomic("approval_threshold"),
        max_validity_seconds=settings.max_validity_seconds,
    )


