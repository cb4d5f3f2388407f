"""The paying key: loaded from IMAGINE_PRIVATE_KEY or an encrypted keystore, and keystores written.

The key never leaves the signer; a keystore is written encrypted, created 0600 in one step, never over a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigurationError
from ..x402 import PrivateKeySigner, Signer

__all__ = ["ReadOnlySigner", "create_keystore", "keystore_path", "load_signer", "public_address"]


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
    from ..x402 import to_checksum_address

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


def load_signer(settings: Settings, password_prompt: Callable[[], str] | None = None) -> Signer:
    """The paying key from IMAGINE_PRIVATE_KEY or an encrypted keystore. The key never leaves the signer."""
    if settings.private_key is not None:
        return PrivateKeySigner(settings.private_key.get_secret_value())
    keystore = keystore_path(settings)
    if keystore is not None:
        try:
            keyfile = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read keystore {keystore}: {type(exc).__name__}") from None
        if settings.keystore_password is not None:
            password = settings.keystore_password.get_secret_value()
        elif password_prompt is not None:
            password = password_prompt()
        else:
            raise ConfigurationError(
                f"the keystore {keystore} is encrypted and there is no terminal to ask its "
                "password: set IMAGINE_KEYSTORE_PASSWORD (or run the command in a terminal)"
            )
        from eth_account import Account  # a second to import: only once there is a password to try

        try:
            return PrivateKeySigner(bytes(Account.decrypt(keyfile, password)))
        except ValueError:
            raise ConfigurationError("the keystore password is wrong (or the keystore is damaged)") from None
    raise ConfigurationError(
        "no paying wallet: set IMAGINE_PRIVATE_KEY (0x hex) or IMAGINE_KEYSTORE, or create one with "
        "`imagine-agent wallet new`"
    )


def create_keystore(
    settings: Settings, path: Path | None = None, password_prompt: Callable[[], str] | None = None
) -> tuple[str, Path]:
    """A new paying key, encrypted into a keystore (default ``DATA_DIR/keystore.json``): its address and path.

    The password comes from IMAGINE_KEYSTORE_PASSWORD, else ``password_prompt`` (a terminal); with neither,
    nothing is written. The file is created 0600 in one step (O_EXCL: never over an existing file).
    """
    path = path or settings.data_dir / "keystore.json"
    if path.exists():
        raise ConfigurationError(f"{path} exists: choose another --keystore path")
    if settings.keystore_password is not None:
        password = settings.keystore_password.get_secret_value()
    elif password_prompt is None:
        raise ConfigurationError("no terminal to ask for the keystore password: set IMAGINE_KEYSTORE_PASSWORD")
    else:
        password = password_prompt()
    from eth_account import Account  # a second to import: only once the keystore can be written

    signer = PrivateKeySigner.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        keyfile = json.dumps(Account.encrypt(bytes.fromhex(signer.export_private_key()[2:]), password))
        # Created 0600 in one step (O_EXCL: never over an existing file), so it is never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(keyfile)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the keystore {path}: {exc.strerror or exc}") from None
    return signer.address, path
