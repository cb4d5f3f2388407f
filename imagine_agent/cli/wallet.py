"""``imagine-agent wallet new | address``: create a paying key, or show its address."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import AsJson, _settings
from ._output import _RUN, _begin, _echo, _emit

wallet_app = typer.Typer(help="Create a wallet or show its address.", no_args_is_help=True)


@wallet_app.command("new")
def wallet_new(
    keystore: Annotated[Optional[Path], typer.Option(help="Keystore file (default: DATA_DIR/keystore.json)")] = None,
    print_key: Annotated[bool, typer.Option("--print-key", help="Print the raw key instead (shown once)")] = False,
    as_json: AsJson = False,
) -> None:
    """Create a paying key in an encrypted keystore (password from IMAGINE_KEYSTORE_PASSWORD or a prompt)."""
    from ..errors import ConfigurationError
    from ..x402 import PrivateKeySigner

    _begin(as_json, sandbox=False)
    signer = PrivateKeySigner.generate()
    if print_key:
        if as_json:
            _emit({"address": signer.address, "privateKey": signer.export_private_key()})
        else:
            _echo(f"address: {signer.address}")
            _echo(f"export IMAGINE_PRIVATE_KEY={signer.export_private_key()}  # shown once, store it safely")
        return
    from eth_account import Account

    settings = _settings()
    _RUN.sandbox = False
    path = keystore or settings.data_dir / "keystore.json"
    if path.exists():
        raise ConfigurationError(f"{path} exists: choose another --keystore path")
    if settings.keystore_password is not None:
        password = settings.keystore_password.get_secret_value()
    elif as_json or not sys.stdin.isatty():
        raise ConfigurationError("no terminal to ask for the keystore password: set IMAGINE_KEYSTORE_PASSWORD")
    else:
        password = str(typer.prompt("Keystore password", hide_input=True, confirmation_prompt=True, err=True))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        keyfile = json.dumps(Account.encrypt(bytes.fromhex(signer.export_private_key()[2:]), password))
        # Created 0600 in one step (O_EXCL: never over an existing file), so it is never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(keyfile)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the keystore {path}: {exc.strerror or exc}") from None
    default = path == settings.data_dir / "keystore.json"
    hint = "found there without IMAGINE_KEYSTORE" if default else f"export IMAGINE_KEYSTORE={path}"
    if as_json:
        _emit({"address": signer.address, "keystore": str(path)})
    else:
        _echo(f"address: {signer.address}")
        _echo(f"keystore: {path}  ({hint})")


@wallet_app.command("address")
def wallet_address(as_json: AsJson = False) -> None:
    """Show the paying wallet's address (never the key; no password needed)."""
    from ..errors import ConfigurationError
    from ..service import public_address

    _begin(as_json, sandbox=False)
    address = public_address(_settings())
    _RUN.sandbox = False
    if address is None:
        raise ConfigurationError("no paying wallet: set IMAGINE_PRIVATE_KEY or IMAGINE_KEYSTORE, or create one "
                                 "with `imagine-agent wallet new`")
    if as_json:
        _emit({"address": address})
    else:
        _echo(address)
