"""The operator's console: a local web app over the books facade every paying process shares.

Budget per window with a spend chart, receipts with filters and explorer links, the gallery, pending jobs
with live progress (server-sent events), unknown payments with a reconcile button, the approvals queue,
the kill switch and the audit of refusals and warnings. It shows the wallet it governs (its USDC balance
when an RPC is set), the API and network it pays, and both books: those of the API it points at first,
the other ones labelled and counted apart (money-safety rule 8). It binds 127.0.0.1 by default and asks for an
access token, handed over once in the URL it prints (like Jupyter) and kept in an HttpOnly, SameSite=Strict
cookie. Every state change is a POST carrying a CSRF token and checked for a same-origin ``Origin``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse

from ..books import PAYMENT_STATES, Books
from ..config import Settings
from ..errors import ImagineError
from ..money import format_usdc
from ..service import results
from . import pages

if TYPE_CHECKING:
    from ..books import Ledger

__all__ = ["COOKIE", "ConsoleServer", "create_app"]

COOKIE = "imagine_console"
POLL_SECONDS = 0.5  # how often the live feeds look at the ledger


@dataclass
class _Console:
    books: Books
    settings: Settings
    token: str
    csrf: str
    display: str


def create_app(books: Books | Ledger, settings: Settings, *, token: str, csrf: str | None = None) -> FastAPI:
    """The console app over the books (the caller closes them); an open ledger is taken as the real books."""
    if len(token) < 16:
        raise ValueError("the console's access token must be at least 16 characters")
    if not isinstance(books, Books):
        books = Books.over(books, settings, sandbox=False, rpc_url=settings.rpc_url)
    state = _Console(books, settings, token, csrf or secrets.token_urlsafe(24), books.display)
    policy = books.policy
    facts = pages.Governs(
        address=books.address,
        api=_api(settings),
        networks=", ".join(sorted(settings.networks)),
        books=books.label,
        rpc=_scheme_and_host(settings.rpc_url) if settings.rpc_url else None,
    )
    app = FastAPI(title="imagine-agent console", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.query_params.get("token")
        # The token is handed over once, then kept out of the address bar (and out of any Referer).
        if given is not None and request.method == "GET" and hmac.compare_digest(given.encode(), token.encode()):
            response: Response = RedirectResponse(request.url.path, status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        cookie = request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(cookie.encode(), token.encode()):
            return HTMLResponse(
                "<h1>403</h1><p>Open the URL with the access token that <code>imagine-agent "
                "console</code> printed.</p>",
                status_code=403,
            )
        if request.method == "POST" and not await _same_origin_with_csrf(request, state.csrf):
            return HTMLResponse("<h1>403</h1><p>Cross-site request refused.</p>", status_code=403)
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" would make Origin null
        return response

    def page(title: str, path: str, body: str, extra_script: str = "") -> HTMLResponse:
        frozen = books.is_frozen()
        return HTMLResponse(
            pages.layout(
                title,
                path,
                body,
                csrf=state.csrf,
                frozen=frozen,
                ledger=state.display,
                extra_script=extra_script,
                governs=facts,
            )
        )

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return asyncio.to_thread(fn, *args, **kwargs)

    @app.get("/", response_class=HTMLResponse)
    async def budget() -> HTMLResponse:
        now = time.time()
        report = await run(books.budget)
        payments = await run(books.receipts, 5000)
        warnings = await run(books.events, kinds=["warning"], limit=10)
        balance = await run(_balance, settings, facts.address) if settings.rpc_url else None
        return page(
            "Budget",
            "/",
            pages.wallet_panel(facts, balance)
            + pages.budget_page(
                report.totals,
                policy.caps,
                policy.approval_threshold,
                payments,
                warnings,
                state.csrf,
                now,
                report=report,
            ),
        )

    @app.get("/receipts", response_class=HTMLResponse)
    async def receipts(
        state_: Annotated[str, Query(alias="state")] = "", endpoint: str = "", origin: str = ""
    ) -> HTMLResponse:
        booked = await run(books.all_receipts, 5000)
        records = [b.record for b in booked]
        endpoints = sorted({pages.redact_url(p.resource) for p in records})
        shown = [
            b
            for b in booked
            for p in [b.record]
            if (not state_ or p.state.value == state_)
            and (not endpoint or pages.redact_url(p.resource) == endpoint)
            and (not origin or ("sandbox" if p.sandbox else "real") == origin)
        ]
        filters = {"state": state_, "endpoint": endpoint, "origin": origin}
        return page("Receipts", "/receipts", pages.receipts_page(shown, filters, list(PAYMENT_STATES), endpoints))

    @app.get("/videos", response_class=HTMLResponse)
    async def videos() -> HTMLResponse:
        tasks = await run(books.tasks, limit=200)
        by_task = {b.record.task_id: b.record for b in await run(books.all_receipts, 5000) if b.record.task_id}
        shown = []
        for booked in tasks:
            task = booked.record
            if task.status != "completed":
                continue
            video = _local(task.video_path, settings)
            preview = _local(str(video.with_suffix(".png")), settings) if video is not None else None
            if video is None and not task.video_url:
                continue
            shown.append((task, by_task.get(task.task_id), video is not None, preview is not None))
        return page("Videos", "/videos", pages.videos_page(shown))

    @app.get("/media/{task_id}/{kind}")
    async def media(task_id: str, kind: str) -> Response:
        """A delivered file, found by task id only: never a path from the request."""
        booked = await run(books.task, task_id)
        if booked is None or booked.record.video_path is None or kind not in ("video", "preview"):
            return Response(status_code=404)
        video = _local(booked.record.video_path, settings)
        path = None if video is None else video if kind == "video" else _local(str(video.with_suffix(".png")), settings)
        if path is None:
            return Response(status_code=404)
        return FileResponse(path, media_type="video/mp4" if kind == "video" else "image/png")

    @app.get("/jobs", response_class=HTMLResponse)
    async def jobs() -> HTMLResponse:
        tasks = [b.record for b in await run(books.tasks, pending_only=True, limit=200)]
        return page("Pending jobs", "/jobs", pages.jobs_page(tasks), extra_script=pages.JOBS_SCRIPT)

    @app.get("/unknown", response_class=HTMLResponse)
    async def unknown(result: str = "") -> HTMLResponse:
        records = await run(books.unsettled)
        rpc = _scheme_and_host(settings.rpc_url) if settings.rpc_url else None  # an RPC path may hold an API key
        return page("Unknown payments", "/unknown", pages.unknown_page(records, state.csrf, rpc, result or None))

    @app.post("/reconcile")
    async def reconcile() -> Response:
        try:
            changed = await run(books.reconcile)
        except ImagineError as exc:  # an RPC's fault: what stayed unsettled stays counted as spent
            text = f"reconcile stopped, nothing further changed: {exc}"
        else:
            text = f"{len(changed)} payment(s) updated" + "".join(f"; {r.id[:8]} → {r.state.value}" for r in changed)
        return RedirectResponse(f"/unknown?result={_quote(text)}", status_code=303)

    @app.get("/approvals", response_class=HTMLResponse)
    async def approvals() -> HTMLResponse:
        entries = await run(books.approvals, show_all=True, limit=200)
        return page("Approvals", "/approvals", pages.approvals_page(entries, state.csrf))

    @app.post("/approvals/{approval_id}/{decision}")
    async def decide(approval_id: str, decision: str, request: Request) -> Response:
        if decision not in ("approve", "deny"):
            return Response(status_code=404)
        form = await request.form()
        reason = str(form.get("reason") or "")
        try:
            await run(
                lambda: books.decide(approval_id, approve=decision == "approve", decided_by="console", reason=reason)
            )
        except (KeyError, ValueError) as exc:
            return page(
                "Approvals",
                "/approvals",
                f'<div class="warn" id="decision-error">{escape(str(exc))}'
                "</div>" + pages.approvals_page(await run(books.approvals, show_all=True, limit=200), state.csrf),
            )
        return RedirectResponse("/approvals", status_code=303)

    @app.post("/freeze")
    async def freeze() -> Response:
        await run(lambda: books.freeze("frozen from the console", source="console"))
        return RedirectResponse("/", status_code=303)

    @app.post("/unfreeze")
    async def unfreeze() -> Response:
        await run(lambda: books.unfreeze(source="console"))
        return RedirectResponse("/", status_code=303)

    @app.get("/audit", response_class=HTMLResponse)
    async def audit() -> HTMLResponse:
        return page(
            "Audit: refusals, warnings, decisions", "/audit", pages.audit_page(await run(books.audit, limit=500))
        )

    @app.get("/api/budget")
    async def budget_json() -> dict[str, Any]:
        """The numbers of the budget page: ``budget --json``'s shape, with the wallet, API and networks."""
        report = await run(books.budget)
        return {**results.budget_json(report), "wallet": facts.address, "api": facts.api, "networks": facts.networks}

    @app.get("/events/jobs")
    async def jobs_feed(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            last = None
            while not await request.is_disconnected():
                tasks = [b.record for b in await run(books.tasks, pending_only=True, limit=200)]
                data = json.dumps(
                    [
                        {"taskId": t.task_id, "prompt": t.prompt, "status": t.status, "progress": t.progress}
                        for t in tasks
                    ]
                )
                if data != last:
                    yield f"event: jobs\ndata: {data}\n\n"
                    last = data
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/events/audit")
    async def audit_feed(request: Request) -> StreamingResponse:
        newest = await run(books.events, limit=1)
        after = newest[0].id if newest else 0

        async def stream() -> AsyncIterator[str]:
            nonlocal after
            yield ": connected\n\n"
            while not await request.is_disconnected():
                for event in await run(books.events, after_id=after, limit=50):
                    after = event.id
                    amount = format_usdc(event.amount) if event.amount is not None else None
                    data = json.dumps(
                        {
                            "id": event.id,
                            "kind": event.kind,
                            "code": event.code,
                            "message": event.message,
                            "amount": amount,
                        }
                    )
                    yield f"event: audit\ndata: {data}\n\n"
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


async def _same_origin_with_csrf(request: Request, csrf: str) -> bool:
    """A POST counts only from this console's own pages: same-origin ``Origin`` and the page's CSRF token."""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != host):
        return False
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        return False
    form = await request.form()
    given = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
    return hmac.compare_digest(given.encode(), csrf.encode())


def _scheme_and_host(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}"
    except ValueError:
        return "(unreadable URL)"


def _local(path: str | None, settings: Settings | None = None) -> Path | None:
    """A delivered file: absolute as the ledger keeps it now; an old relative row where it can still be found."""
    if not path:
        return None
    found = Path(path)
    candidates = (
        [found]
        if found.is_absolute()
        else [Path.cwd() / found]
        + ([settings.data_dir / found, settings.data_dir.parent / found] if settings is not None else [])
    )
    return next((c for c in candidates if c.is_file()), None)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:500])


def _api(settings: Settings) -> str:
    """The API these books pay, without any secret a URL may carry (scheme, host, port)."""
    if settings.base_url is None:
        return "the embedded sandbox (throwaway wallet, demo money)"
    parts = urlsplit(settings.base_url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def _balance(settings: Settings, address: str) -> str:
    """The wallet's USDC on the first allowed network, read from IMAGINE_RPC_URL (an error is shown, not raised)."""
    from ..chain import UsdcChain
    from ..errors import ImagineError

    if not address.startswith("0x"):
        return "unknown (no wallet address)"
    network = sorted(settings.networks)[0]
    chain = UsdcChain(str(settings.rpc_url))
    try:
        return f"{format_usdc(chain.usdc_balance(network, address))} on {network}"
    except (ImagineError, OSError, ValueError) as exc:
        return f"unavailable ({type(exc).__name__})"
    finally:
        chain.close()


class ConsoleServer:
    """The console on a loopback port, served by uvicorn in a daemon thread (tests and ``imagine-agent console``)."""

    def __init__(
        self,
        books: Books | Ledger,
        settings: Settings,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
    ) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.app = create_app(books, settings, token=self.token)
        self.host, self._requested_port = host, port
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the console is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._socket.getsockname()[1]}"

    @property
    def login_url(self) -> str:
        """The URL to open: it carries the access token once."""
        return f"{self.url}/?token={self.token}"

    def start(self) -> ConsoleServer:
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            ws="none",  # the console is plain HTTP (its live view is server-sent events)
            timeout_graceful_shutdown=1,
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="imagine-console"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the console failed to start")
            time.sleep(0.005)
        return self

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
