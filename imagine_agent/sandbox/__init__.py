"""A local Imagine API and x402 facilitator: the embedded demo default, the dev server, the test double.

It implements ``spec/imagine-api.md``: the 402 paywall with real EIP-712 payment verification against
simulated USDC balances, settlement receipts, jobs that move queued → processing → completed on a
configurable clock, real MP4/PNG results, a facilitator (``/verify``, ``/settle``, ``/supported``) and
scripted faults. No real money ever moves here.

    from imagine_agent.sandbox import SandboxServer
    with SandboxServer() as server:
        ...  # point a client at server.url

In-process: ``httpx.AsyncClient(transport=httpx.ASGITransport(create_app()), base_url="http://sandbox")``.
"""

from __future__ import annotations

from .app import create_app
from .config import Fault, FaultKind, SandboxConfig, load_faults
from .server import SandboxServer, run
from .state import Sandbox, Settlement

__all__ = [
    "Fault",
    "FaultKind",
    "Sandbox",
    "SandboxConfig",
    "SandboxServer",
    "Settlement",
    "create_app",
    "load_faults",
    "run",
]
