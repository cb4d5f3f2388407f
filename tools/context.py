"""What the tools need at run time, handed to them by the operator and never shown to the model.

LangChain passes it to every tool through ``ToolRuntime.context`` (``create_agent(context_schema=
ImagineContext)``); the model only ever sees the tools' argument schemas, so nothing here — the
service, its wallet and key, the caps, the autoClank policy — can be read or changed by the model.
A human's approval of the running call (``HumanApproval``) is run-time context too: it lives in a
context variable, not in any argument, so a model cannot set it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagine_agent.errors import ConfigurationError

if TYPE_CHECKING:
    from imagine_agent.client import Quote
    from imagine_agent.config import AutoClankPolicy
    from imagine_agent.service import ImagineService

__all__ = ["HumanApproval", "ImagineContext", "current_approval", "human_approved", "resolve_context"]


@dataclass
class ImagineContext:
    """The run-time context of the video tools (``create_agent(context_schema=ImagineContext)``).

    ``auto_clank`` overrides the service's configured policy for this run (operator-side only);
    ``wait_seconds`` is how long ``generate_video`` waits inside the tool before handing back the
    task id; ``allow_local_images`` lets a local file path be uploaded as the starting image.
    """

    service: ImagineService
    auto_clank: AutoClankPolicy | None = None
    output_dir: Path | None = None
    wait_seconds: float | None = None
    allow_local_images: bool = False

    @property
    def policy(self) -> AutoClankPolicy:
        return self.auto_clank or self.service.settings.auto_clank

    @property
    def downloads(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.service.output_dir

    @property
    def wait_limit(self) -> float:
        return self.wait_seconds if self.wait_seconds is not None else self.service.settings.wait_timeout


def resolve_context(runtime: Any, fallback: ImagineContext | None) -> ImagineContext:
    """The context of this call: the agent's (``runtime.context``), else the one the tool was built with."""
    context = getattr(runtime, "context", None)
    if isinstance(context, ImagineContext):
        return context
    if fallback is not None:
        return fallback
    raise ConfigurationError(
        "no ImagineService for this tool: run it in build_agent() and pass "
        "context=ImagineContext(service=...), or build the tool with context=ImagineContext(...)"
    )


@dataclass(frozen=True)
class HumanApproval:
    """A person approved this tool call, having been shown ``amount`` (atomic USDC; None: no price shown)
    of ``quote`` (its payee and network)."""

    amount: int | None
    reasons: tuple[str, ...] = ()
    quote: Quote | None = None


_APPROVAL: ContextVar[HumanApproval | None] = ContextVar("imagine_agent_human_approval", default=None)


def current_approval() -> HumanApproval | None:
    """The human approval of the tool call running in this context, if any."""
    return _APPROVAL.get()


@contextmanager
def human_approved(approval: HumanApproval) -> Iterator[None]:
    """Mark the code run inside as approved by a human (context-local: other calls never see it)."""
    token = _APPROVAL.set(approval)
    try:
        yield
    finally:
        _APPROVAL.reset(token)
