"""``imagine-agent sandbox | devnet | console | mcp``: the servers the CLI runs until stopped."""

from __future__ import annotations

import sys
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import BaseUrl, BooksBaseUrl, _open, _settings
from ._output import _begin, _echo, _emit, _err, _escape, _fail


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value[:40]!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise typer.BadParameter(f"{value[:40]!r} must be a positive number")
    return number


def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port, printed at start)")] = 8402,
    speed: Annotated[float, typer.Option(parser=_positive, help="Time scale: 60 = a 2-minute job takes 2 s")] = 1.0,
    faults: Annotated[Optional[Path], typer.Option(help="JSON/TOML file of scripted faults")] = None,
    rpc_url: Annotated[
        Optional[str],
        typer.Option(
            "--rpc-url", help="Settle on this node (e.g. `imagine-agent devnet`'s) instead of simulated balances"
        ),
    ] = None,
    relayer_key: Annotated[
        Optional[str],
        typer.Option(
            "--relayer-key",
            envvar="IMAGINE_SANDBOX_RELAYER_KEY",
            show_default=False,
            help="Key that pays the gas of settlements with --rpc-url (env IMAGINE_SANDBOX_RELAYER_KEY)",
        ),
    ] = None,
    network: Annotated[str, typer.Option(help="Network the 402 asks for: base or base-sepolia")] = "base",
    x402: Annotated[str, typer.Option("--x402", help="Protocol version the paywall speaks: v1, v2 or both")] = "v1",
    rich_results: Annotated[
        bool, typer.Option("--rich-results", help="Results in today's shape: media page, coin, txHash")
    ] = False,
) -> None:
    """Run the local Imagine API + x402 facilitator (test double; no real money, or a local chain's USDC)."""
    import socket

    from ..errors import ConfigurationError
    from ..sandbox import SandboxConfig, load_faults, run

    _begin(False, sandbox=True)
    try:
        if x402 not in ("v1", "v2", "both"):
            raise ValueError(f"--x402 must be v1, v2 or both, not {x402!r}")
        config = SandboxConfig(
            speed=speed,
            faults=load_faults(faults) if faults else [],
            network=network,
            rpc_url=rpc_url,
            relayer_key=relayer_key,
            x402=x402,
            rich_results=rich_results,
        )
    except (ValueError, OSError) as exc:  # a broken fault file, an unknown network
        raise ConfigurationError(f"invalid sandbox settings: {exc}") from None
    try:  # bound here and served as is: a clear error now, and the printed port is the one that listens
        listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port or --host"
        ) from None
    port = listening.getsockname()[1]
    where = f"http://{_escape(host)}:{port}"
    if rpc_url is not None:
        from ..chain import UsdcChain, rpc_origin
        from ..errors import ImagineError

        try:
            with UsdcChain(rpc_url) as chain:
                chain.check(network)
        except ImagineError as exc:
            listening.close()
            raise ConfigurationError(f"cannot settle on {rpc_origin(rpc_url)}: {exc}") from None
        _err(
            f"[bold yellow]Sandbox on {where}, settling on the chain at {_escape(rpc_origin(rpc_url))}[/] "
            f"(USDC moves there). Use: IMAGINE_BASE_URL={where} IMAGINE_RPC_URL=<that RPC URL> "
            "IMAGINE_ALLOW_PRIVATE_IMAGE_URLS=1"
        )
    else:
        _err(
            f"[bold yellow]Sandbox on {where} — no real money moves.[/] "
            f"Use: IMAGINE_BASE_URL={where} IMAGINE_ALLOW_PRIVATE_IMAGE_URLS=1"
        )
    run(host, port, config, sock=listening)


def devnet(
    network: Annotated[str, typer.Option(help="Chain to imitate: base (8453) or base-sepolia (84532)")] = "base",
    payers: Annotated[int, typer.Option(help="Fresh throwaway keys to create and fund")] = 1,
    fund: Annotated[Optional[list[str]], typer.Option(help="Also fund this address (repeatable)")] = None,
    amount: Annotated[Decimal, typer.Option(help="USDC to mint to each funded address")] = Decimal("100"),
    host: Annotated[str, typer.Option(help="Interface anvil listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port)")] = 8545,
) -> None:
    """Run a local chain (anvil) with Circle's USDC at Base's address; print one JSON object; run until stopped."""
    import signal

    _begin(False, sandbox=True)  # a throwaway local chain: not real money

    from ..devnet import Devnet
    from ..errors import ImagineError
    from ..money import parse_usdc

    try:
        net = Devnet(
            network,
            payers=payers,
            fund=tuple(fund or ()),
            amount=parse_usdc(amount),
            host=host,
            port=port,
            say=lambda text: _err(f"[bold]{_escape(text)}[/]"),
        )
    except (ImagineError, ValueError) as exc:
        _err(f"[bold red]invalid devnet settings:[/] {_escape(str(exc))}")
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop anvil on SIGTERM too (the finally below)
    try:
        net.start()
    except ImagineError as exc:
        _err(f"[bold red]the devnet did not start:[/] {_escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        _emit(net.info())
        _err(
            f"[bold yellow]Devnet on {net.rpc_url} (chain {net.network.chain_id}): Circle's USDC at "
            f"{net.network.usdc}; throwaway keys, not real money.[/] Ctrl-C stops it."
        )
        net.wait()
    except KeyboardInterrupt:
        pass
    finally:
        net.stop()


class _Transport(StrEnum):
    stdio = "stdio"
    streamable_http = "streamable-http"


def mcp(
    transport: Annotated[_Transport, typer.Option(help="How MCP clients connect")] = _Transport.stdio,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for streamable-http")] = 8765,
    base_url: BaseUrl = None,
    token: Annotated[
        Optional[str],
        typer.Option(
            help="Bearer token streamable-http clients must send (else IMAGINE_MCP_TOKEN, else one is generated "
            "and printed)"
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth", help="Serve streamable-http without a token: any local process could spend the budget"
        ),
    ] = False,
) -> None:
    """Serve quote/generate/status/budget over the Model Context Protocol (Claude Desktop, Cursor, ElizaOS)."""
    import importlib.util

    from ..errors import ConfigurationError

    _begin(False)
    if importlib.util.find_spec("mcp") is None:
        raise ConfigurationError("`imagine-agent mcp` needs the mcp extra: pip install 'imagine-agent[mcp]'")
    settings = _settings(base_url)
    from ..mcp_server import serve

    serve(settings, transport=transport.value, port=port, token=token, no_auth=no_auth)


def console(
    host: Annotated[str, typer.Option(help="Interface (default loopback only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free one)")] = 8403,
    base_url: BooksBaseUrl = None,
) -> None:
    """The operator's web console: budget, receipts, videos, jobs, approvals, kill switch, audit."""
    from ..console import ConsoleServer

    books = _open(False, base_url)
    if host not in ("127.0.0.1", "localhost", "::1"):
        _echo(
            f"warning: listening on {host}: anyone who can reach it and has the token can freeze or approve", err=True
        )
    with books:
        try:
            server = ConsoleServer(books, books.settings, host=host, port=port).start()
        except OSError as exc:
            raise _fail(f"cannot listen on {host}:{port}: {exc.strerror}", "configuration", 2, False) from None
        _echo(f"imagine-agent console on {server.url}\nOpen: {server.login_url}", err=True)
        _echo(server.login_url)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
