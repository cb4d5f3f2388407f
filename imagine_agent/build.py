"""Moved to ``imagine_agent.service.build`` (keys: ``imagine_agent.wallet.keys``); this path keeps its names."""

from __future__ import annotations

from .service.build import SIGNING_GRACE as SIGNING_GRACE
from .service.build import ReadOnlySigner as ReadOnlySigner
from .service.build import claims_sandbox_server as claims_sandbox_server
from .service.build import keystore_path as keystore_path
from .service.build import load_signer as load_signer
from .service.build import policy_from as policy_from
from .service.build import public_address as public_address
from .service.build import sandbox_ledger_location as sandbox_ledger_location

__all__ = [
    "SIGNING_GRACE",
    "ReadOnlySigner",
    "claims_sandbox_server",
    "keystore_path",
    "load_signer",
    "policy_from",
    "public_address",
    "sandbox_ledger_location",
]
