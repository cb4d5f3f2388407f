"""The service layer: the one orchestrator of a paid job and the operator's side of it.

``service`` orchestrates (``ImagineService``), ``build`` finds the parts from settings (the composition root),
``decisions`` applies the operator's policy (rules 5 and 6, once), ``books`` is the operator facade, ``reconcile``
settles what can be proven, ``results`` holds the one JSON shape per record. Names load lazily: the wallet reads
``decisions`` without pulling the orchestrator (and what it imports) in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "BudgetReport",
    "GenerationOutcome",
    "ImagineService",
    "QuoteResult",
    "ReadOnlySigner",
    "check_output_dir",
    "keystore_path",
    "load_signer",
    "public_address",
    "sandbox_ledger_location",
]

_EXPORTS = {
    "BudgetReport": "books",
    "GenerationOutcome": "service",
    "ImagineService": "service",
    "QuoteResult": "service",
    "check_output_dir": "service",
    "ReadOnlySigner": "build",
    "keystore_path": "build",
    "load_signer": "build",
    "public_address": "build",
    "sandbox_ledger_location": "build",
    # not public, imported from here by name: the CLI, tests
    "SANDBOX_NOTICE": "service",
    "SIGNING_GRACE": "build",
    "ProgressCallback": "service",
    "_requirement": "service",
}

if TYPE_CHECKING:
    from .books import BudgetReport as BudgetReport
    from .build import SIGNING_GRACE as SIGNING_GRACE
    from .build import ReadOnlySigner as ReadOnlySigner
    from .build import keystore_path as keystore_path
    from .build import load_signer as load_signer
    from .build import public_address as public_address
    from .build import sandbox_ledger_location as sandbox_ledger_location
    from .service import SANDBOX_NOTICE as SANDBOX_NOTICE
    from .service import GenerationOutcome as GenerationOutcome
    from .service import ImagineService as ImagineService
    from .service import ProgressCallback as ProgressCallback
    from .service import QuoteResult as QuoteResult
    from .service import _requirement as _requirement
    from .service import check_output_dir as check_output_dir


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imagine_agent.service' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
