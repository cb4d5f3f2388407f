"""A lost answer to an unpaid create is not re-sent blindly (issue 22 (e)).

A server may serve a create from provider credits (202 without a 402): re-sending it after its answer was
lost can spend those credits twice. With the server's idempotency key (the sibling Imagine API's ``seed``,
documented in its 402) the re-send carries the same key; without one, the create is recorded (0 USDC,
unknown, with the reason) and the caller told, as for a paid request. Sync and async clients alike.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.errors import PaymentStateUnknownError
from imagine_agent.ledger import Caps, Ledger
from imagine_agent.sandbox import SandboxConfig
from imagine_agent.sandbox.paywall import payment_required_body
from imagine_agent.wallet import PaymentPolicy, Wallet

from ..conftest import FAST_POLL, CountingSigner

API = "https://api.imagine.example"


class CreditsServer:
    """Serves creates from provider credits (202, no 402), after one 402 when ``seed`` (the quote); the first
    ``drops`` creates are received and their answer lost (``ReadError``, as a connection reset after the
    request arrived). With ``seed``, its 402 documents a ``seed`` field and a known seed returns its task."""

    def __init__(self, *, drops: int = 1, seed: bool = False) -> None:
        self.drops, self.seed = drops, seed
        self.creates: list[dict[str, Any]] = []
        self.tasks: dict[str, str] = {}
        self.quotes_left = 1 if seed else 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.quotes_left > 0:  # the first request (a quote) meets the 402, the creates after it credits
            self.quotes_left -= 1
            body = payment_required_body(
                SandboxConfig(),
                resource=f"{API}/generation/create",
                amount=250_000,
                error="X-PAYMENT header is required",
            )
            if self.seed:
                schema = copy.deepcopy(body["accepts"][0]["outputSchema"])
                schema["input"]["bodyFields"]["seed"] = {"type": "integer", "description": "idempotency key"}
                body["accepts"][0]["outputSchema"] = schema
            return httpx.Response(402, json=body)
        sent = json.loads(request.content)
        self.creates.append(sent)
        key = str(sent.get("seed", ""))
        task = self.tasks.get(key) if key else None
        if task is None:
            task = str(uuid.uuid4())
            if key:
                self.tasks[key] = task
        if len(self.creates) <= self.drops:
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(202, json={"taskId": task})

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        return self.handle(request)


def create(flavour: str, server: CreditsServer, wallet: Wallet, *, quote_first: bool = False) -> Any:
    if flavour == "sync":
        with ImagineClient(API, wallet=wallet, poll=FAST_POLL, transport=httpx.MockTransport(server.handle)) as c:
            if quote_first:
                c.quote("a fox in snow", duration=4)
            return c.create("a fox in snow", duration=4)

    async def run() -> Any:
        transport = httpx.MockTransport(server.ahandle)
        async with AsyncImagineClient(API, wallet=wallet, poll=FAST_POLL, transport=transport) as c:
            if quote_first:
                await c.quote("a fox in snow", duration=4)
            return await c.create("a fox in snow", duration=4)

    return asyncio.run(run())


def make_wallet(ledger: Ledger) -> Wallet:
    return Wallet(CountingSigner(), ledger, PaymentPolicy(caps=Caps(per_call=5_000_000)))


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_lost_answer_to_a_credits_create_is_recorded_not_re_sent(flavour: str, ledger: Ledger) -> None:
    """Today: re-sent like any free request, so the credits pay for two videos."""
    server = CreditsServer(drops=1)
    with pytest.raises(PaymentStateUnknownError, match="was not sent again") as caught:
        create(flavour, server, make_wallet(ledger))
    assert len(server.creates) == 1
    assert "0 USDC, unknown" in str(caught.value)
    (event,) = ledger.events(kinds=["unknown"])
    assert event.code == "unpaid_create_lost" and event.amount == 0 and "ReadError" in event.message
    assert event.request_hash  # the request it was, so the operator can tell which one
    assert ledger.payments() == []  # nothing reserved, nothing signed


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_with_the_servers_idempotency_key_the_lost_create_is_re_sent_with_the_same_seed(
    flavour: str, ledger: Ledger
) -> None:
    server = CreditsServer(drops=1, seed=True)
    job = create(flavour, server, make_wallet(ledger), quote_first=True)
    seeds = [c.get("seed") for c in server.creates]
    assert len(seeds) == 2 and seeds[0] is not None and seeds[0] == seeds[1]  # the re-send is the same create
    assert list(server.tasks.values()) == [job.task_id]  # one video
    assert job.payment is not None and job.payment.paid_by == "credits" and job.payment.amount == 0
    assert ledger.events(kinds=["unknown"]) == []


def test_a_connect_error_proves_nothing_arrived_and_is_retried(ledger: Ledger, tmp_path: Path) -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(202, json={"taskId": str(uuid.uuid4())})

    with ImagineClient(API, wallet=make_wallet(ledger), poll=FAST_POLL, transport=httpx.MockTransport(handle)) as c:
        job = c.create("a fox in snow", duration=4)
    assert len(calls) == 2 and job.task_id and ledger.events(kinds=["unknown"]) == []
