"""The admin routes tests and demos drive (``/_admin/...``): settlements, faults, funding, balances, reset."""

from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_core import from_json  # depth-capped: json.loads can overflow the C stack
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .responses import _error
from .state import Sandbox

__all__ = ["admin_routes"]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def admin_routes(sandbox: Sandbox) -> list[Route]:
    """The admin endpoints over one sandbox state."""

    async def admin_settlements(request: Request) -> Response:
        return JSONResponse([s.to_wire() for s in sandbox.settlements()])

    async def admin_list_faults(request: Request) -> Response:
        armed = [
            {**fault.model_dump(mode="json", by_alias=True, exclude_none=True), "remaining": remaining}
            for fault, remaining in sandbox.armed_faults()
        ]
        return JSONResponse({"faults": armed})

    async def admin_faults(request: Request) -> Response:
        try:
            data = from_json(await request.body())
            items = data["faults"] if isinstance(data, dict) else data
            if not isinstance(items, list):
                raise ValueError("'faults' must be a list")
            sandbox.add_faults(items)
        except ValidationError as exc:
            return _error(400, f"invalid fault: {exc.errors()[0]['msg']}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            return _error(400, f'expected {{"faults": [...]}}: {exc}')
        return JSONResponse({"armed": len(sandbox.armed_faults())})

    async def admin_fund(request: Request) -> Response:
        try:
            data = from_json(await request.body())
            address, amount = data["address"], data["amount"]
            if not isinstance(address, str) or not _ADDRESS.match(address):
                raise ValueError("address must be a 0x-prefixed 20-byte hex address")
            if isinstance(amount, str) and re.fullmatch(r"-?[0-9]{1,78}", amount):
                amount = int(amount)
            balance = sandbox.fund(address, amount)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            return _error(400, f'expected {{"address": "0x…", "amount": <atomic units>}}: {exc}')
        return JSONResponse({"address": address, "balance": str(balance)})

    async def admin_balance(request: Request) -> Response:
        address = request.path_params["address"]
        if not _ADDRESS.match(address):
            return _error(400, "address must be a 0x-prefixed 20-byte hex address")
        return JSONResponse({"address": address, "balance": str(sandbox.balance(address))})

    async def admin_reset(request: Request) -> Response:
        sandbox.reset()
        return JSONResponse({"reset": True})

    return [
        Route("/_admin/settlements", admin_settlements, methods=["GET"]),
        Route("/_admin/faults", admin_list_faults, methods=["GET"]),
        Route("/_admin/faults", admin_faults, methods=["POST"]),
        Route("/_admin/fund", admin_fund, methods=["POST"]),
        Route("/_admin/balances/{address}", admin_balance, methods=["GET"]),
        Route("/_admin/reset", admin_reset, methods=["POST"]),
    ]
