"""Money-safety rule 1: a requirement that breaks policy is refused before anything is signed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagine_agent.errors import BudgetExceededError, PolicyViolationError
from imagine_agent.ledger import Caps
from imagine_agent.wallet import PaymentPolicy
from imagine_agent.x402 import NETWORKS, parse_payment_required

from ..spec import SPEC_402

URL = "https://eliza.getimagine.club/generation/create"


def required(**changes: Any):
    body = json.loads(SPEC_402)
    body["accepts"][0].update(changes)
    return parse_payment_required(body)


def policy(**kw: Any) -> PaymentPolicy:
    return PaymentPolicy(caps=Caps(per_call=kw.pop("per_call", 2_000_000)), **kw)


def test_the_spec_402_passes_default_policy() -> None:
    assert policy().choose(required(), URL).amount == 1_000_000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"payTo": "0x" + "ab" * 20}, "payTo allowlist"),
        ({"asset": "0x" + "cd" * 20}, "is not USDC"),
        ({"network": "base-sepolia"}, "offers only"),
        ({"extra": {"name": "USD Coin", "version": "1"}}, "signing domain"),
        ({"extra": {"name": "Fake USD", "version": "2"}}, "signing domain"),
        ({"extra": None}, "signing domain"),
        ({"maxTimeoutSeconds": 86_400}, "valid"),
    ],
)
def test_policy_refusals(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyViolationError, match=message) as info:
        policy().choose(required(**changes), URL)
    assert "Nothing was signed" in str(info.value)


@pytest.mark.parametrize(
    ("resource", "warned"),
    [
        ("https://eliza.getimagine.club/generation/create", False),
        ("http://imagine-api.internal:3000/generation/create", True),  # Host and scheme rewritten by a proxy
        ("https://eliza.getimagine.club/generation/create/", False),
        ("https://evil.example/generation/create", True),
        ("https://eliza.getimagine.club/other", True),
    ],
)
def test_a_resource_naming_another_url_is_a_warning_never_a_refusal(
    resource: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13.3: the signature does not cover ``resource``; payee, asset, network, domain, amount do."""
    with caplog.at_level("WARNING", logger="imagine_agent.wallet"):
        assert policy().choose(required(resource=resource), URL).amount == 1_000_000
    assert any("names resource" in r.message for r in caplog.records) is warned


def test_a_mount_prefix_the_server_does_not_know_is_the_same_resource(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="imagine_agent.wallet"):
        policy().choose(
            required(resource="https://eliza.getimagine.club/generation/create"),
            "https://eliza.getimagine.club/imagine/generation/create",
        )
    assert not caplog.records


def test_price_over_per_call_cap_is_a_budget_refusal() -> None:
    with pytest.raises(BudgetExceededError, match="per-call cap"):
        policy(per_call=999_999).choose(required(), URL)


def test_other_network_needs_its_own_usdc_and_domain() -> None:
    sepolia = NETWORKS["base-sepolia"]
    p = policy(networks=frozenset({"base-sepolia"}))
    ok = required(network="base-sepolia", asset=sepolia.usdc, extra={"name": "USDC", "version": "2"})
    assert p.choose(ok, URL).network == "base-sepolia"
    with pytest.raises(PolicyViolationError, match="signing domain"):
        p.choose(required(network="base-sepolia", asset=sepolia.usdc), URL)  # Base mainnet's domain name


def test_pay_to_allowlist_is_case_insensitive() -> None:
    p = policy(pay_to=frozenset({"0x13A9E3EE4A25C3C72D67F42044438AABC54F2B96"}))
    assert p.choose(required(), URL)
