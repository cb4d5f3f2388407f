"""The composition root: how the parts are found from settings and put together.

The paying key, the policy, the sandbox's books, a sandbox server (shared by the service, which pays, and the
books, which only read and decide, so neither imports the other), and ``assemble``: the client, wallet and
ledgers ``ImagineService.create`` is built from.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..ledger import Caps
from ..origin import SANDBOX_HEADER, is_loopback
from ..wallet.keys import ReadOnlySigner as ReadOnlySigner
from ..wallet.keys import create_keystore as create_keystore
from ..wallet.keys import keystore_path as keystore_path
from ..wallet.keys import load_signer as load_signer
from ..wallet.keys import public_address as public_address
from ..wallet.policy import PaymentPolicy
from .reconcile import SIGNING_GRACE as SIGNING_GRACE

if TYPE_CHECKING:
    from ..client import ImagineClient
    from ..ledger import Ledger
    from ..wallet import Approver, Wallet
    from ..x402 import Signer

__all__ = [
    "SIGNING_GRACE",
    "Parts",
    "ReadOnlySigner",
    "assemble",
    "claims_sandbox_server",
    "create_keystore",
    "keystore_path",
    "load_signer",
    "policy_from",
    "public_address",
    "sandbox_ledger_location",
]


def sandbox_ledger_location(settings: Settings) -> Path:
    """The sandbox's own ledger in the data dir: demo history stays visible, apart from the real ledger."""
    return settings.data_dir / "sandbox-ledger.sqlite3"


def claims_sandbox_server(base_url: str, timeout: float) -> bool:
    """A loopback server that answers with ``X-Imagine-Sandbox: 1``. Unreachable or remote: not a sandbox."""
    if not is_loopback(base_url):
        return False
    import httpx

    from ..tls import tls_context

    try:
        with httpx.Client(verify=tls_context(), timeout=min(timeout, 5.0), trust_env=False) as probe:
            return bool(probe.get(base_url).headers.get(SANDBOX_HEADER, "").strip() == "1")
    except httpx.HTTPError:
        return False


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


@dataclass
class Parts:
    """What an ``ImagineService`` is built from; ``closers`` close what was opened here, in order."""

    client: ImagineClient
    wallet: Wallet
    sandbox: Any = None  # the embedded sandbox server, when there is no base URL
    external: bool = False  # a loopback server that identifies itself as the sandbox
    closers: list[Callable[[], None]] = field(default_factory=list)


def assemble(
    settings: Settings,
    *,
    approver: Approver | None = None,
    signer: Signer | None = None,
    ledger: Ledger | None = None,
    transport: Any = None,
    password_prompt: Callable[[], str] | None = None,
) -> Parts:
    """From settings: the real API when ``base_url`` is set, else the embedded sandbox (throwaway key)."""
    from ..client import ImagineClient
    from ..ledger import open_ledger
    from ..polling import PollPolicy
    from ..wallet import Wallet
    from ..x402 import PrivateKeySigner

    closers: list[Callable[[], None]] = []
    sandbox = None
    base_url = settings.base_url
    poll = PollPolicy(settings.poll_first, settings.poll_floor, settings.poll_cap)
    kill_switch: Ledger | None = None
    external = False
    try:
        if base_url is None or ledger is None:
            external = base_url is not None and claims_sandbox_server(base_url, settings.timeout)
        if base_url is None:
            from ..sandbox import SandboxConfig, SandboxServer

            sandbox = SandboxServer(SandboxConfig(speed=settings.sandbox_speed))
            sandbox.start()
            closers.append(sandbox.stop)
            base_url = sandbox.url
            signer = signer or PrivateKeySigner.generate()
            poll = poll.scaled(settings.sandbox_speed)
        if ledger is None and (sandbox is not None or external):
            # Sandbox money has its own ledger; the operator's kill switch still stops it.
            kill_switch = open_ledger(settings.ledger_location)
            closers.insert(0, kill_switch.close)
            ledger = open_ledger(sandbox_ledger_location(settings))
            closers.insert(0, ledger.close)
        signer = signer or load_signer(settings, password_prompt)
        if ledger is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            ledger = open_ledger(settings.ledger_location)
            closers.insert(0, ledger.close)
    except BaseException:
        for close in closers:
            close()
        raise
    wallet = Wallet(
        signer,
        ledger,
        policy_from(settings),
        approver=approver,
        session_id=uuid.uuid4().hex,
        kill_switch=kill_switch,
        sandbox_only=sandbox is not None or external,
    )
    if settings.rpc_url and sandbox is None:  # balance pre-flight on the chain (not the embedded demo)
        from functools import partial

        from ..chain import UsdcChain
        from .reconcile import reconcile_ledger

        chain = UsdcChain(settings.rpc_url)
        closers.append(chain.close)
        wallet.balance_of = chain.usdc_balance
        wallet.chain_decides = True  # rule 9: nothing possibly spent is freed by the clock
        wallet.reconcile = partial(reconcile_ledger, ledger, settings.rpc_url)
    client = ImagineClient(
        base_url,
        wallet=wallet,
        transport=transport,
        timeout=settings.timeout,
        poll=poll,
        template_data_as_string=settings.template_data_as_string,
        max_download_bytes=settings.max_download_mb * 1024 * 1024,
        allow_private_image_urls=settings.allow_private_image_urls,
        allow_private_downloads=settings.allow_private_downloads,
    )
    closers.insert(0, client.close)
    return Parts(client, wallet, sandbox=sandbox, external=external, closers=closers)
