"""HTTP clients for the Imagine API: ``ImagineClient`` (sync) and ``AsyncImagineClient``.

Both drive the same I/O-free flows (``flows.py``); only sending, sleeping and file writes differ.
A create returns a job handle (``Job`` / ``AsyncJob``, in ``jobs.py``) to wait on, stream progress from,
and download; capped bodies, hop checks and download writing live in ``_http.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ._http import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_DOWNLOAD,
    MAX_API_BODY,
    MAX_REDIRECTS,
    USER_AGENT,
    _Body,
    _carries_payment,
    _check_download,
    _check_hop,
    _hop_requests,
    _next_hop,
    _safe_stem,
    _too_slow,
    _Writer,
)
from .addresses import resolve_public
from .errors import DownloadError, InvalidRequestError, ProtocolError
from .flows import (
    DEADLINE,
    Call,
    Created,
    Fetch,
    Flow,
    Sleep,
    Update,
    create_flow,
    download_flow,
    paid_flow,
    quote_flow,
    status_flow,
    wait_flow,
)
from .inputs import ImageFile, check_image_host, is_private_host, validate_task_id
from .jobs import AsyncJob, Downloads, Job
from .models import CreateRequest, PaymentRequired, PaymentRequirements, TaskStatus
from .polling import PollPolicy
from .tls import tls_context
from .x402 import NETWORKS, payment_header_name, video_models

__all__ = ["AsyncImagineClient", "AsyncJob", "Downloads", "ImagineClient", "Job", "Quote"]

T = TypeVar("T")
DEFAULT_DOWNLOAD_TIMEOUT = 600.0  # total seconds for one file, however the bytes arrive
# Every connection kept open, and few of them: httpcore checks every pooled connection on every
# request, so the CPU per request grows with the pool (httpx's default: 100, of which only 20 are
# kept alive, the rest reconnecting). 20 keep-alive connections carry thousands of polled jobs.
POOL_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=20)
# The async client lets at most this many API requests into httpx at once; the rest wait their turn in a FIFO
# ahead of it. httpcore's pool rescans its whole queue of waiting requests whenever a connection frees up, so
# thousands of polled jobs queued there cost CPU quadratic in their number, and a request's timeout would
# run while it waited for a connection it never got (a paid create "timed out" before it left).
MAX_CONCURRENT_REQUESTS = POOL_LIMITS.max_connections or 20
MODELS_TTL = 300.0  # seconds the video models a 402 listed are trusted without asking again
MODELS_PROBE = "video models probe"  # the prompt of the free, unpaid create that reads them


@dataclass(frozen=True)
class Quote:
    """The server's price for a request, and the requirement a wallet would pay."""

    required: PaymentRequired
    requirement: PaymentRequirements

    @property
    def amount(self) -> int:
        return self.requirement.amount

    @property
    def models(self) -> list[str]:
        """The video models the 402 lists (empty when it documents none)."""
        return video_models(self.required)[0]

    @property
    def default_model(self) -> str | None:
        return video_models(self.required)[1]

    def to_json(self) -> dict[str, Any]:
        r = self.requirement
        return {
            "x402Version": r.x402_version,
            "models": self.models,
            "defaultModel": self.default_model,
            "amount": r.max_amount_required,
            "asset": r.asset,
            "network": r.network,
            "payTo": r.pay_to,
            "resource": r.resource,
            "maxTimeoutSeconds": r.max_timeout_seconds,
        }


def request_hash(base_url: str, request: CreateRequest, image: ImageFile | None) -> str:
    """Identity of a request for idempotency: same prompt, settings and image → same hash."""
    canonical = {
        "url": base_url.rstrip("/") + "/generation/create",
        "body": request.body(template_data_as_string=False),
        "image": image.sha256 if image else None,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        wallet: Any = None,
        timeout: float = 30.0,
        poll: PollPolicy | None = None,
        template_data_as_string: bool = True,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD,
        allow_private_image_urls: bool = False,
        allow_private_downloads: bool | None = None,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.wallet = wallet
        self.timeout = timeout
        self.poll = poll or PollPolicy()
        self.template_data_as_string = template_data_as_string
        self.max_download_bytes = max_download_bytes
        self.allow_private_image_urls = allow_private_image_urls
        # None: a private file host is allowed only when the API itself is on one (a local sandbox).
        if allow_private_downloads is None:
            allow_private_downloads = is_private_host(httpx.URL(self.base_url).host)
        self.allow_private_downloads = allow_private_downloads
        self.download_timeout = download_timeout
        self.clock = clock
        self._models: tuple[float, list[str], str | None] | None = None
        # Downloads resolve their host themselves and connect to the checked address, unless a transport or
        # client was injected: then that transport, not DNS, decides where the bytes come from.
        self._resolve_downloads = True
        # The last 402 documented a ``seed`` body field: the sibling Imagine API's client-chosen task id "for
        # idempotency". Then each create carries a fresh one, and a lost answer may be re-sent with it.
        self._seed_offered = False

    @property
    def create_url(self) -> str:
        return f"{self.base_url}/generation/create"

    def _request(self, prompt_or_request: str | CreateRequest, template: dict[str, Any]) -> CreateRequest:
        if isinstance(prompt_or_request, CreateRequest):
            request = prompt_or_request
        else:
            request = CreateRequest.build(prompt_or_request, **template)
        image = request.template_data.image if request.template_data else None
        if image:
            check_image_host(image, allow_private=self.allow_private_image_urls)
        known = self.cached_models()
        if known is not None:
            self._check_model(request, known[0])
        return request

    def cached_models(self) -> tuple[list[str], str | None] | None:
        """The models and default the last 402 of this endpoint listed, while fresh (``MODELS_TTL``)."""
        if self._models is None or self.clock() - self._models[0] > MODELS_TTL:
            return None
        return self._models[1], self._models[2]

    @staticmethod
    def _check_model(request: CreateRequest, models: list[str]) -> None:
        model = request.template_data.video_model if request.template_data else None
        if model is not None and models and model not in models:
            raise InvalidRequestError(
                f"invalid request: the server does not sell video model {model!r}; it lists "
                f"{', '.join(models)}. Nothing was signed."
            )

    def _seen_402(self, request: CreateRequest) -> Callable[[PaymentRequired], None]:
        """Remember the models a 402 lists, and refuse a model it does not list (before signing)."""

        def seen(required: PaymentRequired) -> None:
            models, default = video_models(required)
            if models:
                self._models = (self.clock(), models, default)
            self._seed_offered = any(_offers_seed(r.output_schema) for r in required.accepts)
            self._check_model(request, models)

        return seen

    def _create_maker(
        self, request: CreateRequest, image: ImageFile | None, seed: int | None = None
    ) -> Callable[[str | None], httpx.Request]:
        headers = {"user-agent": USER_AGENT, "accept": "application/json", "accept-encoding": ACCEPT_ENCODING}
        extra = {"seed": str(seed)} if seed is not None else {}
        if image is None:
            content = json.dumps(
                {**request.body(template_data_as_string=self.template_data_as_string), **extra}, separators=(",", ":")
            ).encode()

            def make(payment: str | None) -> httpx.Request:
                h = {**headers, "content-type": "application/json"}
                if payment:
                    h[payment_header_name(payment)] = payment
                return httpx.Request("POST", self.create_url, headers=h, content=content)

            return make
        body = request.body(template_data_as_string=True)
        data = {**{k: v for k, v in body.items() if isinstance(v, str)}, **extra}

        def make_multipart(payment: str | None) -> httpx.Request:
            h = dict(headers)
            if payment:
                h[payment_header_name(payment)] = payment
            files = {"image": (image.filename, image.content, image.mime)}
            return httpx.Request("POST", self.create_url, headers=h, data=data, files=files)

        return make_multipart

    def _status_maker(self, task_id: str) -> Callable[[], httpx.Request]:
        url = f"{self.base_url}/generation/{validate_task_id(task_id)}/status"
        headers = {"user-agent": USER_AGENT, "accept": "application/json", "accept-encoding": ACCEPT_ENCODING}
        return lambda: httpx.Request("GET", url, headers=headers)

    def _quote_from(self, required: PaymentRequired, request: CreateRequest) -> Quote:
        self._seen_402(request)(required)
        networks = self.wallet.policy.networks if self.wallet is not None else NETWORKS.keys()
        usable = [r for r in required.accepts if r.scheme == "exact" and r.network in networks]
        return Quote(required, usable[0] if usable else required.accepts[0])

    def _create(
        self, request: CreateRequest, image: ImageFile | None, new: bool, max_amount: int | None
    ) -> Flow[Created]:
        rhash = request_hash(self.base_url, request, image)
        seed = secrets.randbelow(2**53) if self._seed_offered else None
        return create_flow(
            self._create_maker(request, image, seed),
            self.wallet,
            resource_url=self.create_url,
            request_hash=rhash,
            description=request.prompt[:120],
            clock=self.clock,
            new=new,
            max_amount=max_amount,
            on_402=self._seen_402(request),
            idempotent=seed is not None,
        )

    def _wait(
        self, task_id: str, timeout: float | None, initial_delay: float, job: Job | AsyncJob | None = None
    ) -> Flow[TaskStatus]:
        aims: tuple[float, ...] = ()
        if job is not None and job.history is not None:
            offset = 0.0 if job.created_at is None else max(0.0, self.clock() - job.created_at)
            aims = job.history.plan(offset=offset, first=initial_delay, cap=self.poll.cap, floor=self.poll.floor)
        return wait_flow(
            self._status_maker(task_id),
            task_id,
            policy=self.poll,
            timeout=timeout,
            initial_delay=initial_delay,
            clock=self.clock,
            aims=aims,
            timing=job.timing if job is not None else None,
        )

    def _download_steps(self, status: TaskStatus, directory: Path, name: str, include_preview: bool) -> list[Fetch]:
        if status.status != "completed" or status.video_url is None:
            raise DownloadError(f"nothing to download yet: the task is {status.status}")
        stem = _safe_stem(name)
        steps = [Fetch(status.video_url, directory / f"{stem}.mp4", self.max_download_bytes, "video")]
        if include_preview and status.preview_url:
            steps.append(
                Fetch(status.preview_url, directory / f"{stem}.png", min(self.max_download_bytes, 50 * 2**20), "image")
            )
        return steps

    def _deadline(self, request: httpx.Request) -> float:
        """The monotonic instant this request must be done by: its own timeout, or the caller's deadline."""
        budget = self.timeout
        until = request.extensions.get(DEADLINE)
        if until is not None:
            budget = min(budget, max(0.0, float(until) - self.clock()))
        remaining = max(0.001, budget)
        request.extensions["timeout"] = httpx.Timeout(remaining).as_dict()
        return time.monotonic() + remaining

    def _check_hop(self, url: httpx.URL, fetch: Fetch) -> bool:
        """Check one download hop (``_http._check_hop``).

        True when the hop must also be resolved here and sent to a checked address (``addresses``).
        """
        _check_hop(url, fetch, self.allow_private_downloads)
        return not self.allow_private_downloads and self._resolve_downloads


def _offers_seed(schema: dict[str, Any] | None) -> bool:
    """Whether a 402's ``outputSchema`` documents the ``seed`` body field (a client-chosen idempotency key)."""
    fields = (schema or {}).get("input", {})
    fields = fields.get("bodyFields") if isinstance(fields, dict) else None
    return isinstance(fields, dict) and "seed" in fields


# ------------------------------------------------------------------------------------------------ sync


class ImagineClient(_Base):
    """Synchronous client. Pass ``transport=`` to talk to an in-process server in tests."""

    def __init__(
        self,
        base_url: str,
        *,
        wallet: Any = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, wallet=wallet, **options)
        self._resolve_downloads = transport is None and http_client is None
        self._owns_http = http_client is None
        self.http = http_client or httpx.Client(
            transport=transport, verify=tls_context(), timeout=self.timeout, follow_redirects=False, limits=POOL_LIMITS
        )

    def __enter__(self) -> ImagineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    # -- driving flows
    def _iterate(self, flow: Flow[T], result: list[T]) -> Iterator[TaskStatus]:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                result.append(stop.value)
                return
            value, error = None, None
            try:
                if isinstance(step, httpx.Request):
                    value = self._send(step)
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                elif isinstance(step, Call):
                    value = step.fn()
                elif isinstance(step, Update):
                    yield step.status
                elif isinstance(step, Fetch):
                    value = self._fetch(step)
            except Exception as exc:
                error = exc

    def _run(self, flow: Flow[T], on_update: Callable[[TaskStatus], None] | None = None) -> T:
        result: list[T] = []
        for status in self._iterate(flow, result):
            if on_update is not None:
                on_update(status)
        return result[0]

    def _send(self, request: httpx.Request) -> httpx.Response:
        """One API request under a total deadline; a request carrying a payment never follows a redirect."""
        deadline = self._deadline(request)
        try:
            resp = self.http.send(request, stream=True, follow_redirects=not _carries_payment(request))
        except httpx.TooManyRedirects:
            raise ProtocolError(f"{request.url} redirected more than {self.http.max_redirects} times") from None
        try:
            if resp.is_stream_consumed:  # an in-memory transport's answer, already read (and decoded) by httpx
                return _Body.of_read(resp, MAX_API_BODY)
            body = _Body(resp.headers.get("content-encoding", ""), MAX_API_BODY)
            for chunk in resp.iter_raw():
                body.feed(chunk)
                if body.error is not None:
                    break
                if time.monotonic() > deadline:
                    raise _too_slow(request)
            return body.response(resp)
        finally:
            resp.close()

    def _fetch(self, fetch: Fetch) -> Path:
        """One attempt; retries live in ``download_flow``. Redirects are followed hop by hop, each checked."""
        deadline = time.monotonic() + self.download_timeout
        url = httpx.URL(fetch.url)
        for _ in range(MAX_REDIRECTS + 1):
            addresses = resolve_public(url, fetch.kind) if self._check_hop(url, fetch) else None
            with contextlib.closing(self._open_hop(_hop_requests(url, addresses, self.http))) as resp:
                if (hop := _next_hop(url, resp)) is not None:
                    url = hop
                    continue
                _check_download(resp, fetch)
                writer = _Writer(fetch)
                try:
                    for chunk in resp.iter_bytes(1 << 16):
                        writer.write(chunk)
                        if time.monotonic() > deadline:
                            raise DownloadError(f"{fetch.kind} download took longer than {self.download_timeout:.0f} s")
                    return writer.finish()
                except BaseException:
                    writer.abort()
                    raise
        raise DownloadError(f"{fetch.kind} download redirected more than {MAX_REDIRECTS} times")

    def _open_hop(self, requests: list[httpx.Request]) -> httpx.Response:
        """The first checked address that accepts the connection answers; nothing is looked up again."""
        for index, request in enumerate(requests):
            try:
                return self.http.send(request, stream=True, follow_redirects=False)
            except httpx.ConnectError:
                if index == len(requests) - 1:
                    raise
        raise AssertionError("unreachable")

    # -- the API
    def quote(
        self, prompt_or_request: str | CreateRequest, *, image_file: ImageFile | None = None, **template: Any
    ) -> Quote:
        """The price of a request (reads the 402; signs nothing, pays nothing)."""
        request = self._request(prompt_or_request, template)
        return self._quote_from(self._run(quote_flow(self._create_maker(request, image_file))), request)

    def models(self) -> tuple[list[str], str | None]:
        """The video models this server sells and its default, from its live 402 (cached briefly)."""
        known = self.cached_models()
        return known if known is not None else video_models(self.quote(MODELS_PROBE).required)

    def create(
        self,
        prompt_or_request: str | CreateRequest,
        *,
        image_file: ImageFile | None = None,
        new: bool = False,
        max_amount: int | None = None,
        **template: Any,
    ) -> Job:
        """Pay for and submit a generation; returns at 202 with a job handle (does not wait).

        While a signed payment for this exact request may still settle, raises ``PaymentInFlightError``
        with nothing signed, unless ``new=True``. ``max_amount``: refuse a price above it (a quote shown).
        """
        request = self._request(prompt_or_request, template)
        created = self._run(self._create(request, image_file, new, max_amount))
        return Job(self, created.task_id, created.payment).created_now()

    def resend(self, request: CreateRequest, auth: Any, *, image_file: ImageFile | None = None) -> Job:
        """Re-send a journaled payment header (crash recovery); never signs."""
        created = self._run(
            paid_flow(self._create_maker(request, image_file), self.wallet, auth, clock=self.clock, ambiguous=True)
        )
        return Job(self, created.task_id, created.payment).created_now()

    def status(self, task_id: str) -> TaskStatus:
        return self._run(status_flow(self._status_maker(task_id), task_id))

    def job(self, task_id: str) -> Job:
        """A handle on an existing task, to resume waiting or download."""
        return Job(self, validate_task_id(task_id), None)

    def download(
        self, status: TaskStatus, directory: str | Path, *, name: str = "video", include_preview: bool = True
    ) -> Downloads:
        """Stream the video (and preview) into ``directory`` as ``name.mp4`` / ``name.png``, size-limited."""
        steps = self._download_steps(status, Path(directory), name, include_preview)
        paths = [self._run(download_flow(f)) for f in steps]
        return Downloads(paths[0], paths[1] if len(paths) > 1 else None)


# ----------------------------------------------------------------------------------------------- async


class AsyncImagineClient(_Base):
    """Asynchronous client; the same flows as ``ImagineClient``, driven on an event loop."""

    def __init__(
        self,
        base_url: str,
        *,
        wallet: Any = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, wallet=wallet, **options)
        self._resolve_downloads = transport is None and http_client is None
        self._owns_http = http_client is None
        self.http = http_client or httpx.AsyncClient(
            transport=transport, verify=tls_context(), timeout=self.timeout, follow_redirects=False, limits=POOL_LIMITS
        )
        self._gate: asyncio.Semaphore | None = None  # made on first use, on the loop that uses it

    async def __aenter__(self) -> AsyncImagineClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def _iterate(self, flow: Flow[T], result: list[T]) -> AsyncIterator[TaskStatus]:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                result.append(stop.value)
                return
            value, error = None, None
            try:
                if isinstance(step, httpx.Request):
                    value = await self._send(step)
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Call):
                    value = await asyncio.to_thread(step.fn)
                elif isinstance(step, Update):
                    yield step.status
                elif isinstance(step, Fetch):
                    value = await self._fetch(step)
            except Exception as exc:
                error = exc

    async def _run(self, flow: Flow[T], on_update: Callable[[TaskStatus], Any] | None = None) -> T:
        result: list[T] = []
        async for status in self._iterate(flow, result):
            if on_update is not None:
                maybe = on_update(status)
                if asyncio.iscoroutine(maybe):
                    await maybe
        return result[0]

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Wait for a turn (bounded only by the caller's deadline, if any), then send within the request's timeout.

        A request still waiting for its turn has not left: its own timeout starts when it is handed to httpx.
        """
        if self._gate is None:
            self._gate = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)
        until = request.extensions.get(DEADLINE)
        try:
            async with asyncio.timeout(None if until is None else max(0.0, float(until) - self.clock())):
                await self._gate.acquire()
        except TimeoutError:
            raise _too_slow(request) from None
        try:
            deadline = self._deadline(request)
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    return await self._send_within(request)
            except TimeoutError:
                raise _too_slow(request) from None
        finally:
            self._gate.release()

    async def _send_within(self, request: httpx.Request) -> httpx.Response:
        try:
            resp = await self.http.send(request, stream=True, follow_redirects=not _carries_payment(request))
        except httpx.TooManyRedirects:
            raise ProtocolError(f"{request.url} redirected more than {self.http.max_redirects} times") from None
        try:
            if resp.is_stream_consumed:
                return _Body.of_read(resp, MAX_API_BODY)
            body = _Body(resp.headers.get("content-encoding", ""), MAX_API_BODY)
            async for chunk in resp.aiter_raw():
                body.feed(chunk)
                if body.error is not None:
                    break
            return body.response(resp)
        finally:
            await resp.aclose()

    async def _fetch(self, fetch: Fetch) -> Path:
        try:
            async with asyncio.timeout(self.download_timeout):
                return await self._fetch_within(fetch)
        except TimeoutError:
            raise DownloadError(f"{fetch.kind} download took longer than {self.download_timeout:.0f} s") from None

    async def _fetch_within(self, fetch: Fetch) -> Path:
        url = httpx.URL(fetch.url)
        for _ in range(MAX_REDIRECTS + 1):
            resolve = self._check_hop(url, fetch)
            addresses = await asyncio.to_thread(resolve_public, url, fetch.kind) if resolve else None
            resp = await self._open_hop(_hop_requests(url, addresses, self.http))
            try:
                if (hop := _next_hop(url, resp)) is not None:
                    url = hop
                    continue
                _check_download(resp, fetch)
                writer = _Writer(fetch)
                try:
                    async for chunk in resp.aiter_bytes(1 << 16):
                        writer.write(chunk)
                    return writer.finish()
                except BaseException:
                    writer.abort()
                    raise
            finally:
                await resp.aclose()
        raise DownloadError(f"{fetch.kind} download redirected more than {MAX_REDIRECTS} times")

    async def _open_hop(self, requests: list[httpx.Request]) -> httpx.Response:
        for index, request in enumerate(requests):
            try:
                return await self.http.send(request, stream=True, follow_redirects=False)
            except httpx.ConnectError:
                if index == len(requests) - 1:
                    raise
        raise AssertionError("unreachable")

    async def quote(
        self, prompt_or_request: str | CreateRequest, *, image_file: ImageFile | None = None, **template: Any
    ) -> Quote:
        request = self._request(prompt_or_request, template)
        return self._quote_from(await self._run(quote_flow(self._create_maker(request, image_file))), request)

    async def models(self) -> tuple[list[str], str | None]:
        known = self.cached_models()
        return known if known is not None else video_models((await self.quote(MODELS_PROBE)).required)

    async def create(
        self,
        prompt_or_request: str | CreateRequest,
        *,
        image_file: ImageFile | None = None,
        new: bool = False,
        max_amount: int | None = None,
        **template: Any,
    ) -> AsyncJob:
        request = self._request(prompt_or_request, template)
        created = await self._run(self._create(request, image_file, new, max_amount))
        return AsyncJob(self, created.task_id, created.payment).created_now()

    async def resend(self, request: CreateRequest, auth: Any, *, image_file: ImageFile | None = None) -> AsyncJob:
        created = await self._run(
            paid_flow(self._create_maker(request, image_file), self.wallet, auth, clock=self.clock, ambiguous=True)
        )
        return AsyncJob(self, created.task_id, created.payment).created_now()

    async def status(self, task_id: str) -> TaskStatus:
        return await self._run(status_flow(self._status_maker(task_id), task_id))

    def job(self, task_id: str) -> AsyncJob:
        return AsyncJob(self, validate_task_id(task_id), None)

    async def download(
        self, status: TaskStatus, directory: str | Path, *, name: str = "video", include_preview: bool = True
    ) -> Downloads:
        steps = self._download_steps(status, Path(directory), name, include_preview)
        paths = [await self._run(download_flow(f)) for f in steps]
        return Downloads(paths[0], paths[1] if len(paths) > 1 else None)
