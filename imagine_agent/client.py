"""HTTP clients for the Imagine API: ``ImagineClient`` (sync) and ``AsyncImagineClient``.

Both drive the same I/O-free flows (``flows.py``); only sending, sleeping and file writes differ.
A create returns a job handle (``Job`` / ``AsyncJob``) to wait on, stream progress from, and download.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from .errors import DownloadError, InvalidRequestError, ProtocolError
from .flows import (
    Call,
    Created,
    Fetch,
    Flow,
    PaymentInfo,
    Sleep,
    TransientDownloadError,
    Update,
    create_flow,
    download_flow,
    paid_flow,
    quote_flow,
    status_flow,
    wait_flow,
)
from .models import (
    CreateRequest,
    GenerationResult,
    ImageFile,
    PaymentRequired,
    PaymentRequirements,
    TaskStatus,
    check_image_host,
    validate_task_id,
)
from .polling import PollPolicy
from .x402 import NETWORKS, payment_header_name, video_models

__all__ = ["AsyncImagineClient", "AsyncJob", "Downloads", "ImagineClient", "Job", "Quote"]

T = TypeVar("T")
MAX_API_BODY = 1024 * 1024
DEFAULT_MAX_DOWNLOAD = 512 * 1024 * 1024
VIDEO_TYPES = ("video/", "application/octet-stream", "binary/octet-stream")
IMAGE_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
USER_AGENT = "imagine-agent/0.1"
# Every connection kept open, and few of them: httpcore checks every pooled connection on every
# request, so the CPU per request grows with the pool (httpx's default: 100, of which only 20 are
# kept alive, the rest reconnecting). 20 keep-alive connections carry thousands of polled jobs.
POOL_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=20)
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


@dataclass(frozen=True)
class Downloads:
    video: Path
    preview: Path | None


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
        self.clock = clock
        self._models: tuple[float, list[str], str | None] | None = None

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
            self._check_model(request, models)

        return seen

    def _create_maker(self, request: CreateRequest, image: ImageFile | None) -> Callable[[str | None], httpx.Request]:
        headers = {"user-agent": USER_AGENT, "accept": "application/json"}
        if image is None:
            content = json.dumps(
                request.body(template_data_as_string=self.template_data_as_string), separators=(",", ":")
            ).encode()

            def make(payment: str | None) -> httpx.Request:
                h = {**headers, "content-type": "application/json"}
                if payment:
                    h[payment_header_name(payment)] = payment
                return httpx.Request("POST", self.create_url, headers=h, content=content)

            return make
        body = request.body(template_data_as_string=True)
        data = {k: v for k, v in body.items() if isinstance(v, str)}

        def make_multipart(payment: str | None) -> httpx.Request:
            h = dict(headers)
            if payment:
                h[payment_header_name(payment)] = payment
            files = {"image": (image.filename, image.content, image.mime)}
            return httpx.Request("POST", self.create_url, headers=h, data=data, files=files)

        return make_multipart

    def _status_maker(self, task_id: str) -> Callable[[], httpx.Request]:
        url = f"{self.base_url}/generation/{validate_task_id(task_id)}/status"
        headers = {"user-agent": USER_AGENT, "accept": "application/json"}
        return lambda: httpx.Request("GET", url, headers=headers)

    def _quote_from(self, required: PaymentRequired, request: CreateRequest) -> Quote:
        self._seen_402(request)(required)
        networks = self.wallet.policy.networks if self.wallet is not None else NETWORKS.keys()
        usable = [r for r in required.accepts if r.scheme == "exact" and r.network in networks]
        return Quote(required, usable[0] if usable else required.accepts[0])

    def _create(self, request: CreateRequest, image: ImageFile | None, new: bool = False) -> Flow[Created]:
        rhash = request_hash(self.base_url, request, image)
        return create_flow(
            self._create_maker(request, image),
            self.wallet,
            resource_url=self.create_url,
            request_hash=rhash,
            description=request.prompt[:120],
            clock=self.clock,
            on_402=self._seen_402(request),
            # A new video for the same request on purpose gets its own payment-identifier: the server
            # would rightly refuse (409) a second payment under the first one's id.
            payment_key=f"{rhash}:{os.urandom(16).hex()}" if new else None,
        )

    def _wait(self, task_id: str, timeout: float | None, initial_delay: float) -> Flow[TaskStatus]:
        return wait_flow(
            self._status_maker(task_id), task_id, policy=self.poll, timeout=timeout,
            initial_delay=initial_delay, clock=self.clock,
        )

    def _download_steps(self, status: TaskStatus, directory: Path, name: str, include_preview: bool) -> list[Fetch]:
        if status.status != "completed" or status.video_url is None:
            raise DownloadError(f"nothing to download yet: the task is {status.status}")
        stem = _safe_stem(name)
        steps = [Fetch(status.video_url, directory / f"{stem}.mp4", self.max_download_bytes, "video")]
        if include_preview and status.preview_url:
            steps.append(Fetch(status.preview_url, directory / f"{stem}.png", min(self.max_download_bytes, 50 * 2**20),
                               "image"))
        return steps


def _safe_stem(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "-_")[:80] or "video"


def _check_download(resp: httpx.Response, fetch: Fetch) -> None:
    if resp.status_code >= 500:
        raise TransientDownloadError(f"{fetch.kind} download answered HTTP {resp.status_code}: {fetch.url}")
    if resp.status_code != 200:
        raise DownloadError(f"{fetch.kind} download answered HTTP {resp.status_code}: {fetch.url}")
    ctype = resp.headers.get("content-type", "").lower()
    allowed = VIDEO_TYPES if fetch.kind == "video" else IMAGE_TYPES
    if ctype and not ctype.startswith(allowed):
        raise DownloadError(f"{fetch.kind} download is {ctype!r}, not a {fetch.kind}: {fetch.url}")
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > fetch.max_bytes:
        raise DownloadError(
            f"{fetch.kind} is {int(declared)} bytes, over the {fetch.max_bytes}-byte limit (IMAGINE_MAX_DOWNLOAD_MB)"
        )


class _Writer:
    """Write a download to ``name.part`` and rename it into place only when complete and within limits."""

    def __init__(self, fetch: Fetch) -> None:
        fetch.path.parent.mkdir(parents=True, exist_ok=True)
        self.fetch = fetch
        self.part = fetch.path.with_name(fetch.path.name + ".part")
        self.file = self.part.open("wb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.fetch.max_bytes:
            raise DownloadError(f"{self.fetch.kind} passed the {self.fetch.max_bytes}-byte limit; download stopped")
        self.file.write(chunk)

    def finish(self) -> Path:
        self.file.close()
        if self.size == 0:
            raise DownloadError(f"{self.fetch.kind} download was empty: {self.fetch.url}")
        os.replace(self.part, self.fetch.path)
        return self.fetch.path

    def abort(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.part.unlink()


def _capped(resp: httpx.Response, body: bytes) -> httpx.Response:
    return httpx.Response(resp.status_code, headers=resp.headers, content=body, request=resp.request)


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
        self._owns_http = http_client is None
        self.http = http_client or httpx.Client(
            transport=transport, timeout=self.timeout, follow_redirects=True, limits=POOL_LIMITS
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
        resp = self.http.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_API_BODY:
                    raise ProtocolError(f"{request.url} answered with more than {MAX_API_BODY} bytes")
            return _capped(resp, bytes(body))
        finally:
            resp.close()

    def _fetch(self, fetch: Fetch) -> Path:
        """One attempt; retries live in ``download_flow``."""
        with self.http.stream("GET", fetch.url, headers={"user-agent": USER_AGENT}) as resp:
            _check_download(resp, fetch)
            writer = _Writer(fetch)
            try:
                for chunk in resp.iter_bytes(1 << 16):
                    writer.write(chunk)
                return writer.finish()
            except BaseException:
                writer.abort()
                raise

    # -- the API
    def quote(self, prompt_or_request: str | CreateRequest, *, image_file: ImageFile | None = None,
              **template: Any) -> Quote:
        """The price of a request (reads the 402; signs nothing, pays nothing)."""
        request = self._request(prompt_or_request, template)
        return self._quote_from(self._run(quote_flow(self._create_maker(request, image_file))), request)

    def models(self) -> tuple[list[str], str | None]:
        """The video models this server sells and its default, from its live 402 (cached briefly)."""
        known = self.cached_models()
        return known if known is not None else video_models(self.quote(MODELS_PROBE).required)

    def create(self, prompt_or_request: str | CreateRequest, *, image_file: ImageFile | None = None,
               new: bool = False, **template: Any) -> Job:
        """Pay for and submit a generation; returns at 202 with a job handle (does not wait).

        ``new``: a new video for a request already paid for, on purpose (its own payment-identifier)."""
        request = self._request(prompt_or_request, template)
        created = self._run(self._create(request, image_file, new))
        return Job(self, created.task_id, created.payment)

    def resend(self, request: CreateRequest, auth: Any, *, image_file: ImageFile | None = None) -> Job:
        """Re-send a journaled payment header (crash recovery); never signs."""
        created = self._run(paid_flow(self._create_maker(request, image_file), self.wallet, auth,
                                      clock=self.clock, ambiguous=True))
        return Job(self, created.task_id, created.payment)

    def status(self, task_id: str) -> TaskStatus:
        return self._run(status_flow(self._status_maker(task_id), task_id))

    def job(self, task_id: str) -> Job:
        """A handle on an existing task, to resume waiting or download."""
        return Job(self, validate_task_id(task_id), None)

    def download(self, status: TaskStatus, directory: str | Path, *, name: str = "video",
                 include_preview: bool = True) -> Downloads:
        """Stream the video (and preview) into ``directory`` as ``name.mp4`` / ``name.png``, size-limited."""
        steps = self._download_steps(status, Path(directory), name, include_preview)
        paths = [self._run(download_flow(f)) for f in steps]
        return Downloads(paths[0], paths[1] if len(paths) > 1 else None)


class Job:
    """A submitted generation (like replicate's ``Prediction``): wait, stream updates, download."""

    def __init__(self, client: ImagineClient, task_id: str, payment: PaymentInfo | None) -> None:
        self.client = client
        self.task_id = task_id
        self.payment = payment
        self.last: TaskStatus | None = None

    def __repr__(self) -> str:
        state = self.last.status if self.last else "submitted"
        return f"Job(task_id={self.task_id!r}, status={state!r})"

    def status(self) -> TaskStatus:
        self.last = self.client.status(self.task_id)
        return self.last

    def iter_updates(self, *, timeout: float | None = None, initial_delay: float | None = None) -> Iterator[TaskStatus]:
        """Yield each change of status or progress until completed; raises on failed/not found/timeout."""
        delay = self.client.poll.first if initial_delay is None else initial_delay
        result: list[TaskStatus] = []
        for status in self.client._iterate(self.client._wait(self.task_id, timeout, delay), result):
            self.last = status
            yield status
        self.last = result[0]

    def wait(self, *, timeout: float | None = None, on_update: Callable[[TaskStatus], None] | None = None,
             initial_delay: float | None = None) -> TaskStatus:
        for status in self.iter_updates(timeout=timeout, initial_delay=initial_delay):
            if on_update is not None:
                on_update(status)
        assert self.last is not None
        return self.last

    def result(self, *, timeout: float | None = None) -> GenerationResult:
        status = self.last if self.last and self.last.status == "completed" else self.wait(timeout=timeout)
        assert status.result is not None
        return status.result

    def download(self, directory: str | Path, *, include_preview: bool = True) -> Downloads:
        status = self.last if self.last and self.last.status == "completed" else self.wait()
        return self.client.download(status, directory, name=self.task_id, include_preview=include_preview)


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
        self._owns_http = http_client is None
        self.http = http_client or httpx.AsyncClient(
            transport=transport, timeout=self.timeout, follow_redirects=True, limits=POOL_LIMITS
        )

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
        resp = await self.http.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_API_BODY:
                    raise ProtocolError(f"{request.url} answered with more than {MAX_API_BODY} bytes")
            return _capped(resp, bytes(body))
        finally:
            await resp.aclose()

    async def _fetch(self, fetch: Fetch) -> Path:
        async with self.http.stream("GET", fetch.url, headers={"user-agent": USER_AGENT}) as resp:
            _check_download(resp, fetch)
            writer = _Writer(fetch)
            try:
                async for chunk in resp.aiter_bytes(1 << 16):
                    writer.write(chunk)
                return writer.finish()
            except BaseException:
                writer.abort()
                raise

    async def quote(self, prompt_or_request: str | CreateRequest, *, image_file: ImageFile | None = None,
                    **template: Any) -> Quote:
        request = self._request(prompt_or_request, template)
        return self._quote_from(await self._run(quote_flow(self._create_maker(request, image_file))), request)

    async def models(self) -> tuple[list[str], str | None]:
        known = self.cached_models()
        return known if known is not None else video_models((await self.quote(MODELS_PROBE)).required)

    async def create(self, prompt_or_request: str | CreateRequest, *, image_file: ImageFile | None = None,
                     new: bool = False, **template: Any) -> AsyncJob:
        request = self._request(prompt_or_request, template)
        created = await self._run(self._create(request, image_file, new))
        return AsyncJob(self, created.task_id, created.payment)

    async def resend(self, request: CreateRequest, auth: Any, *, image_file: ImageFile | None = None) -> AsyncJob:
        created = await self._run(paid_flow(self._create_maker(request, image_file), self.wallet, auth,
                                            clock=self.clock, ambiguous=True))
        return AsyncJob(self, created.task_id, created.payment)

    async def status(self, task_id: str) -> TaskStatus:
        return await self._run(status_flow(self._status_maker(task_id), task_id))

    def job(self, task_id: str) -> AsyncJob:
        return AsyncJob(self, validate_task_id(task_id), None)

    async def download(self, status: TaskStatus, directory: str | Path, *, name: str = "video",
                       include_preview: bool = True) -> Downloads:
        steps = self._download_steps(status, Path(directory), name, include_preview)
        paths = [await self._run(download_flow(f)) for f in steps]
        return Downloads(paths[0], paths[1] if len(paths) > 1 else None)


class AsyncJob:
    """Async job handle (like fal's request handles): ``async for status in job``, ``await job.wait()``."""

    def __init__(self, client: AsyncImagineClient, task_id: str, payment: PaymentInfo | None) -> None:
        self.client = client
        self.task_id = task_id
        self.payment = payment
        self.last: TaskStatus | None = None

    def __repr__(self) -> str:
        state = self.last.status if self.last else "submitted"
        return f"AsyncJob(task_id={self.task_id!r}, status={state!r})"

    async def status(self) -> TaskStatus:
        self.last = await self.client.status(self.task_id)
        return self.last

    async def iter_updates(self, *, timeout: float | None = None,
                           initial_delay: float | None = None) -> AsyncIterator[TaskStatus]:
        delay = self.client.poll.first if initial_delay is None else initial_delay
        result: list[TaskStatus] = []
        async for status in self.client._iterate(self.client._wait(self.task_id, timeout, delay), result):
            self.last = status
            yield status
        self.last = result[0]

    def __aiter__(self) -> AsyncIterator[TaskStatus]:
        return self.iter_updates()

    async def wait(self, *, timeout: float | None = None, on_update: Callable[[TaskStatus], Any] | None = None,
                   initial_delay: float | None = None) -> TaskStatus:
        async for status in self.iter_updates(timeout=timeout, initial_delay=initial_delay):
            if on_update is not None:
                maybe = on_update(status)
                if asyncio.iscoroutine(maybe):
                    await maybe
        assert self.last is not None
        return self.last

    async def result(self, *, timeout: float | None = None) -> GenerationResult:
        status = self.last if self.last and self.last.status == "completed" else await self.wait(timeout=timeout)
        assert status.result is not None
        return status.result

    async def download(self, directory: str | Path, *, include_preview: bool = True) -> Downloads:
        status = self.last if self.last and self.last.status == "completed" else await self.wait()
        return await self.client.download(status, directory, name=self.task_id, include_preview=include_preview)

