"""What the operator allows a payment to be: money-safety rule 1, checked before anything is signed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..config import IMAGINE_PAY_TO
from ..errors import BudgetExceededError, PolicyViolationError
from ..money import format_usdc
from ..x402 import NETWORKS, select_requirement

if TYPE_CHECKING:
    from ..ledger import Caps
    from ..models import PaymentRequired, PaymentRequirements

__all__ = ["PaymentPolicy"]

log = logging.getLogger(__name__)


def _same_resource(offered: str, requested: str) -> bool:
    """Whether a 402's ``resource`` names the URL we requested, as an honest server behind a proxy does.

    Behind a reverse proxy a server names its internal host and port, ``http://`` behind TLS
    termination, and a path without the proxy's mount prefix: the path only has to end the same way.
    A mismatch is worth a warning, never a refusal: the signature does not cover the resource, and what
    protects the payer (payee, asset, network, signing domain, amount, validity) is checked apart.
    """
    a, b = urlsplit(offered), urlsplit(requested)
    same_host = (a.scheme.lower(), (a.hostname or "").lower(), a.port) == (
        b.scheme.lower(),
        (b.hostname or "").lower(),
        b.port,
    )
    offered_path, requested_path = a.path.rstrip("/"), b.path.rstrip("/")
    return same_host and (offered_path == requested_path or requested_path.endswith(offered_path or "/"))


@dataclass(frozen=True)
class PaymentPolicy:
    """What the operator allows. Built from settings; nothing the agent says can change it."""

    caps: Caps
    networks: frozenset[str] = frozenset({"base"})
    pay_to: frozenset[str] = frozenset({IMAGINE_PAY_TO.lower()})
    approval_threshold: int | None = None
    max_validity_seconds: int = 600

    def __post_init__(self) -> None:
        object.__setattr__(self, "pay_to", frozenset(a.lower() for a in self.pay_to))

    def choose(self, required: PaymentRequired, resource_url: str) -> PaymentRequirements:
        """Pick and check a requirement (money-safety rule 1). Raises before anything is signed."""
        requirement = select_requirement(required, self.networks)
        self.check(requirement, resource_url)
        return requirement

    def check(self, req: PaymentRequirements, resource_url: str) -> None:
        def refuse(why: str, code: str) -> PolicyViolationError:
            return PolicyViolationError(f"refused to pay: {why}. Nothing was signed.", code=code)

        if req.scheme != "exact":
            raise refuse(f"scheme {req.scheme!r} is not 'exact'", "scheme_not_allowed")
        network = NETWORKS.get(req.network)
        if network is None or req.network not in self.networks:
            raise refuse(
                f"network {req.network!r} is not in the allowlist ({', '.join(sorted(self.networks))})",
                "network_not_allowed",
            )
        if req.asset.lower() != network.usdc.lower():
            raise refuse(f"asset {req.asset} is not USDC on {req.network} ({network.usdc})", "asset_not_allowed")
        if req.pay_to.lower() not in self.pay_to:
            raise refuse(
                f"payee {req.pay_to} is not in the payTo allowlist (set IMAGINE_PAY_TO to allow it)",
                "payee_not_allowed",
            )
        if req.resource and not _same_resource(req.resource, resource_url):
            log.warning(
                "the 402 names resource %r but the request went to %r (a proxy rewriting Host, scheme or "
                "path?); paying on payee, asset, network, domain, amount and validity, which it does not change",
                req.resource,
                resource_url,
            )
        extra = req.extra or {}
        if (extra.get("name"), extra.get("version")) != (network.usdc_name, network.usdc_version):
            raise refuse(
                f"the signing domain {extra.get('name')!r}/{extra.get('version')!r} is not USDC's "
                f"({network.usdc_name!r}/{network.usdc_version!r}) on {req.network}",
                "domain_not_allowed",
            )
        if req.max_timeout_seconds > self.max_validity_seconds:
            raise refuse(
                f"the authorization would stay valid {req.max_timeout_seconds} s, over the "
                f"{self.max_validity_seconds} s this wallet signs for",
                "validity_too_long",
            )
        if req.amount <= 0:  # the ledger reserves positive amounts only; a zero authorization pays for nothing
            raise refuse("the server asks for 0 USDC, which is not a payment this wallet signs", "zero_amount")
        if req.amount > self.caps.per_call:
            raise BudgetExceededError(
                f"the price {format_usdc(req.amount)} is over the per-call cap of "
                f"{format_usdc(self.caps.per_call)}. Nothing was signed. Raise IMAGINE_MAX_PER_CALL "
                "(or --max-per-call) if you mean to pay it.",
                code="per_call_cap",
            )
