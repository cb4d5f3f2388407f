"""The service an MCP server runs over, created on the first tool call (``initialize`` and ``tools/list``
answer without it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Settings
from .elicitation import _queue_approvals

if TYPE_CHECKING:
    from ..service import ImagineService

__all__ = ["LazyService"]


class LazyService:
    """Stands in for ``ImagineService`` until a tool needs it, then creates it once.

    Desktop clients spawn ``imagine-agent mcp`` for every session and wait for ``initialize`` and
    ``tools/list``; the service (httpx, the wallet, the ledger, the embedded sandbox)
    costs more than the SDK itself to start, and answers neither. A configuration error then comes
    back from the first tool call, as an MCP error result with the message.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._service: ImagineService | None = None

    def _get(self) -> ImagineService:
        if self._service is None:
            from ..service import ImagineService

            service = ImagineService.create(self.settings)
            service.output_dir = service.settings.data_dir / "videos"
            _queue_approvals(service)
            self._service = service
        return self._service

    @property
    def is_sandbox(self) -> bool:
        return self.settings.base_url is None if self._service is None else self._service.is_sandbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
