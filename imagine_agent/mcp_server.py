"""The same operations over the Model Context Protocol, for Claude Desktop, Cursor and ElizaOS's MCP plugin.

    imagine-agent mcp                      # stdio (what desktop clients spawn)
    python -m imagine_agent.mcp_server     # the same
    imagine-agent mcp --transport streamable-http --port 8765

Tools: ``quote_video``, ``generate_video`` (progress notifications while it renders), ``video_status``,
``wait_for_video``, ``budget_status``. Resources: ``imagine://budget``, ``imagine://receipts``,
``imagine://videos/pending``. Each tool only calls ``ImagineService``; a failure comes back as an MCP
error result carrying the error's message (never a traceback, never a key). Caps come from the
server's settings (``IMAGINE_*``), never from tool arguments.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from .config import SANDBOX_NOTICE, Settings
from .errors import AwaitingApprovalError, ImagineError, exit_code_for

if TYPE_CHECKING:  # the service, its client, wallet, ledger and the sandbox load on the first tool call
    from .ledger import PaymentRecord
    from .models import TaskStatus
    from .service import ImagineService

__all__ = ["create_server", "main", "serve"]

INSTRUCTIONS = """Buys AI videos from the Imagine API, paying per request in USDC on Base (x402).
Quote first (quote_video signs nothing), then generate_video pays once and waits for the render.
Spending is capped by the operator; budget_status shows what is left. If generate_video returns
before the video is done, resume it with wait_for_video(task_id) instead of paying again."""


def _auto_clank(settings: Settings, requested: bool) -> bool:
    """Operator policy decides (rule 6): ``never``/``always`` win; ``agent``/``ask`` follow the request."""
    return {"never": False, "always": True}.get(settings.auto_clank, requested)


def _receipt(record: PaymentRecord) -> dict[str, Any]:
    """A payment as shown to clients: never the signed header (a bearer instrument)."""
    return {
        "id": record.id, "state": record.state.value, "amount": str(record.amount), "asset": record.asset,
        "network": record.network, "payTo": record.pay_to, "payer": record.payer, "taskId": record.task_id,
        "transaction": record.transaction, "reason": record.reason,
        "createdAt": dt.datetime.fromtimestamp(record.created_at, dt.UTC).isoformat(timespec="seconds"),
    }


_APPROVAL_ID = re.compile(r"^[0-9a-f]{12}$")  # the queue's ids; task ids are longer


def _is_approval(service: ImagineService, approval_id: str) -> bool:
    try:
        service.ledger.get_approval(approval_id)
    except KeyError:
        return False
    return True


def _remote_image(image: str | None) -> str | None:
    """Only URLs: a file path would have this server upload its own files on a client's say-so."""
    if image is not None and not image.startswith(("http://", "https://", "data:")):
        raise ToolError("InvalidRequestError: image must be an http(s) URL or a data: URL, not a file path")
    return image


async def _call(work: Callable[[], Awaitable[Any]]) -> Any:
    """Run one service call; its errors become MCP tool errors with the message only."""
    try:
        return await work()
    except AwaitingApprovalError:
        raise
    except ImagineError as exc:
        raise ToolError(f"{type(exc).__name__} (code {exc.code}): {exc}") from None


def _progress(ctx: Context) -> Callable[[TaskStatus], Awaitable[None]]:
    """Forward each poll as an MCP progress notification."""

    async def report(status: TaskStatus) -> None:
        done = 100.0 if status.status == "completed" else float(status.progress or 0)
        await ctx.report_progress(done, 100.0, status.status)

    return report


def create_server(service: ImagineService) -> MCPServer:
    """An MCP server over one open service (the caller closes the service)."""
    server = MCPServer("imagine-agent", instructions=INSTRUCTIONS)
    settings = service.settings

    @server.tool()
    async def quote_video(prompt: str, duration: float | None = None, image: str | None = None,
                          auto_enhance: bool = False, auto_clank: bool = False,
                          video_model: str | None = None) -> dict[str, Any]:
        """Price of a video, and whether the budget allows it. Signs and pays nothing.

        duration: seconds (default 8). image: http(s) URL or data URL to animate. video_model: one of the
        'models' the answer lists (default: the server's).
        """
        image = _remote_image(image)
        result = await _call(lambda: service.aquote(
            prompt, duration=duration, image=image, auto_enhance=auto_enhance,
            auto_clank=_auto_clank(settings, auto_clank), video_model=video_model))
        return {**result.to_json(), "sandbox": service.is_sandbox}

    @server.tool()
    async def generate_video(prompt: str, ctx: Context, duration: float | None = None, image: str | None = None,
                             auto_enhance: bool = False, auto_clank: bool = False,
                             wait: bool = True, video_model: str | None = None) -> dict[str, Any]:
        """Pay for one video (at most once per identical request), wait for it and download it.

        Sends progress notifications while it renders. wait=false returns right after payment with the
        task id; resume with wait_for_video. auto_clank (if the operator allows it) deploys a coin for the
        video whose creator is the paying wallet.
        """
        image = _remote_image(image)
        try:
            outcome = await _call(lambda: service.agenerate(
                prompt, duration=duration, image=image, auto_enhance=auto_enhance,
                auto_clank=_auto_clank(settings, auto_clank), wait=wait, on_progress=_progress(ctx),
                video_model=video_model))
        except AwaitingApprovalError as exc:  # not a failure: the operator decides; the same call then pays
            return {"status": "awaiting_approval", "code": exc.code, "approvalId": exc.approval_id,
                    "message": str(exc), "paid": None,
                    "next": "Tell the user the payment waits for the operator's approval. Call generate_video "
                            "again with the same arguments once it is approved; nothing was paid."}
        budget = await service.abudget()
        return {**outcome.to_json(), "budget": budget.to_json()["remaining"]}

    @server.tool()
    async def video_status(task_id: str) -> dict[str, Any]:
        """The current status of a video task, once (no waiting)."""
        from .results import delivery_facts

        status = await _call(lambda: service.astatus(task_id))
        return {"taskId": task_id, **status.to_wire(), **delivery_facts(status, service.wallet.address)}

    @server.tool()
    async def wait_for_video(task_id: str, ctx: Context, download: bool = True) -> dict[str, Any]:
        """Wait for an already paid task to finish (with progress notifications), then download it. Pays nothing.

        Given the approvalId of a generate_video that returned awaiting_approval instead, it continues that
        request once the operator approved it (paying what was approved, once).
        """
        if _APPROVAL_ID.match(task_id) is not None and await asyncio.to_thread(_is_approval, service, task_id):
            try:
                outcome = await _call(lambda: asyncio.to_thread(service.resume_approval, task_id))
            except AwaitingApprovalError as exc:
                return {"status": "awaiting_approval", "code": exc.code, "approvalId": exc.approval_id,
                        "message": str(exc), "paid": None}
            task_id = outcome.task_id
        from .results import delivery_facts

        status = await _call(lambda: service.await_task(task_id, on_progress=_progress(ctx)))
        facts = delivery_facts(status, service.wallet.address)
        result: dict[str, Any] = {"taskId": task_id, **status.to_wire(), **facts}
        if download and status.status == "completed":
            files = await _call(lambda: asyncio.to_thread(service.download, task_id, None, status=status))
            result["videoPath"] = str(files.video)
            result["previewPath"] = str(files.preview) if files.preview else None
        return result

    @server.tool()
    async def budget_status() -> dict[str, Any]:
        """Spent, reserved, unknown and remaining budget, the operator's caps, and the kill switch."""
        report = await _call(service.abudget)
        return {**report.to_json(), "sandbox": service.is_sandbox}

    @server.resource("imagine://budget", name="budget", mime_type="application/json")
    async def budget_resource() -> str:
        """The budget report (as budget_status)."""
        report = await service.abudget()
        return json.dumps(report.to_json())

    @server.resource("imagine://receipts", name="receipts", mime_type="application/json")
    async def receipts_resource() -> str:
        """Every payment, newest first: amount, state, task, transaction."""
        try:
            records = await asyncio.to_thread(service.receipts, 200)
        except ImagineError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps({"payments": [_receipt(r) for r in records]})

    @server.resource("imagine://videos/pending", name="pending videos", mime_type="application/json")
    async def pending_resource() -> str:
        """Paid tasks that have not finished yet (resume them with wait_for_video)."""
        tasks = await asyncio.to_thread(service.pending)
        return json.dumps({"tasks": [{"taskId": t.task_id, "prompt": t.prompt, "status": t.status,
                                      "progress": t.progress} for t in tasks]})

    return server


class LazyService:
    """Stands in for ``ImagineService`` until a tool needs it, then creates it once.

    Desktop clients spawn ``imagine-agent mcp`` for every session and wait for ``initialize`` and
    ``tools/list``; the service (httpx, the wallet, the ledger, the embedded sandbox with FastAPI)
    costs more than the SDK itself to start, and answers neither. A configuration error then comes
    back from the first tool call, as an MCP error result with the message.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._service: ImagineService | None = None

    def _get(self) -> ImagineService:
        if self._service is None:
            from .service import ImagineService

            service = ImagineService.create(self.settings)
            service.queue_approvals("mcp")  # no human at the other end: over-threshold payments wait for the operator
            service.output_dir = service.settings.data_dir / "videos"
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


def check_settings(settings: Settings) -> None:
    """What ``ImagineService.create`` would refuse at once, checked without loading it: a wallet."""
    from .errors import ConfigurationError

    if settings.base_url is not None and settings.private_key is None and settings.keystore is None:
        raise ConfigurationError(
            "no paying wallet: set IMAGINE_PRIVATE_KEY (0x hex) or IMAGINE_KEYSTORE, or create one with "
            "`imagine-agent wallet new`"
        )
    if settings.base_url is not None and settings.private_key is None and settings.keystore_password is None:
        raise ConfigurationError("the keystore needs a password: set IMAGINE_KEYSTORE_PASSWORD")


def serve(settings: Settings | None = None, *, transport: str = "stdio", port: int = 8765,
          host: str = "127.0.0.1") -> None:
    """Serve until the client goes away, then close the service (created on the first tool call).
    What ``imagine-agent mcp`` runs."""
    if transport not in ("stdio", "streamable-http"):
        raise ValueError(f"unknown MCP transport {transport!r}: use stdio or streamable-http")
    try:
        settings = settings or Settings()
        check_settings(settings)
    except ImagineError as exc:
        print(f"imagine-agent mcp: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(exit_code_for(exc)) from None
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per poll would flood the client's log
    service = LazyService(settings)
    try:
        if service.is_sandbox:
            print(SANDBOX_NOTICE, file=sys.stderr)  # stdout belongs to the protocol
        server = create_server(cast("ImagineService", service))
        if transport == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host=host, port=port)
    finally:
        service.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m imagine_agent.mcp_server [stdio|streamable-http] [port]``; settings from ``IMAGINE_*``."""
    args = sys.argv[1:] if argv is None else argv
    transport: Literal["stdio", "streamable-http"] = "streamable-http" if args[:1] == ["streamable-http"] else "stdio"
    serve(transport=transport, port=int(args[1]) if len(args) > 1 else 8765)


if __name__ == "__main__":
    main()
