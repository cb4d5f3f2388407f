"""``imagine-agent wallet new | address``: create a paying key, or show its address."""

from __future__ import annotations

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
    from ..service.build import create_keystore
    from ..x402 import PrivateKeySigner

    _begin(as_json, sandbox=False)
    if print_key:
        signer = PrivateKeySigner.generate()
        if as_json:
            _emit({"address": signer.address, "privateKey": signer.export_private_key()})
        else:
            _echo(f"address: {signer.address}")
            _echo(f"export IMAGINE_PRIVATE_KEY={signer.export_private_key()}  # shown once, store it safely")
        return
    settings = _settings()
    _RUN.sandbox = False
    prompt = (
        None
        if as_json or not sys.stdin.isatty()
        else (lambda: str(typer.prompt("Keystore password", hide_input=True, confirmation_prompt=True, err=True)))
    )
    address, path = create_keystore(settings, keystore, prompt)
    default = path == settings.data_dir / "keystore.json"
    hint = "found there without IMAGINE_KEYSTORE" if default else f"export IMAGINE_KEYSTORE={path}"
    if as_json:
        _emit({"address": address, "keystore": str(path)})
    else:
        _echo(f"address: {address}")
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
        raise ConfigurationError(
            "no paying wallet: set IMAGINE_PRIVATE_KEY or IMAGINE_KEYSTORE, or create one "
            "with `imagine-agent wallet new`"
        )
    if as_json:
        _emit({"address": address})
    else:
        _echo(address)
