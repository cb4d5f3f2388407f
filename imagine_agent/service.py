"""ImagineService: the one orchestrator of a paid job (client + wallet + ledger).

Every surface — CLI, LangChain tools, ElizaOS plugin, MCP server — calls this and only formats the
result, so payment logic exists once. With no base URL configured it starts the embedded sandbox
with a throwaway, sandbox-funded key: no real money can move.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .client import Downloads, ImagineClient, Job, Quote, request_hash
from .config import SANDBOX_NOTICE as SANDBOX_NOTICE  # re-exported: cli imports it from here
from .config import Settings
from .errors import (
    ConfigurationError,
    ImagineError,
    InvalidRequestError,
    PaymentRejectedError,
    PaymentStateUnknownError,
)
from .flows import PaymentInfo
from .ledger import BudgetTotals, Caps, Ledger, PaymentRecord, PaymentState, TaskRecord, open_ledger
from .models import CreateRequest, ImageFile, PaymentRequirements, TaskStatus
from .money import format_usdc
from .polling import PollPolicy
from .wallet import Approver, PaymentPolicy, Wallet, approval_context, collect_warnings
from .x402 import PrivateKeySigner, Signer

__all__ = ["BudgetReport", "GenerationOutcome", "ImagineService", "QuoteResult", "load_signer"]

T = TypeVar("T")
FINISHED = ("completed", "failed", "not_found")
SIGNING_GRACE = 120.0  # seconds a reservation may wait for its signature before it counts as abandoned


@dataclass(frozen=True)
class QuoteResult:
    quote: Quote
    allowed: bool
    refusal: str | None
    remaining: int
    refusal_code: str | None = None  # the stable code (errors.REFUSAL_CODES) when not allowed
    model_prices: dict[str, int] = field(default_factory=dict)  # each listed model's price for this request

    def to_json(self) -> dict[str, Any]:
        out = {**self.quote.to_json(), "allowed": self.allowed, "refusal": self.refusal,
               "refusalCode": self.refusal_code, "remaining": str(self.remaining)}
        if self.model_prices:
            out["modelPrices"] = {model: str(amount) for model, amount in self.model_prices.items()}
        return out


@dataclass
class GenerationOutcome:
    task_id: str
    status: TaskStatus | None
    payment: PaymentInfo | None
    prompt: str
    attached: bool = False
    downloads: Downloads | None = None
    sandbox: bool = False
    warnings: list[str] = field(default_factory=list)  # budget windows this payment took past 80 % / 95 %

    def to_json(self) -> dict[str, Any]:
        from .results import delivery_facts

        return {
            "taskId": self.task_id,
            "status": self.status.status if self.status else "submitted",
            "paid": self.payment.to_json() if self.payment else None,
            "result": self.status.result.to_wire() if self.status and self.status.result else None,
            **delivery_facts(self.status, self.payment.payer if self.payment and self.payment.payer else None),
            "videoPath": str(self.downloads.video) if self.downloads else None,
            "previewPath": str(self.downloads.preview) if self.downloads and self.downloads.preview else None,
            "attached": self.attached,
            "sandbox": self.sandbox,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class BudgetReport:
    totals: BudgetTotals
    caps: Caps
    approval_threshold: int | None
    address: str

    def to_json(self) -> dict[str, Any]:
        t, c = self.totals, self.caps

        def s(v: int | None) -> str | None:
            return None if v is None else str(v)

        return {
            "address": self.address,
            "spent": str(t.spent),
            "reserved": str(t.reserved),
            "unknown": str(t.unknown),
            "remaining": {"daily": s(t.remaining_daily), "total": s(t.remaining_total),
                          "session": s(t.remaining_session), "perCall": str(c.per_call)},
            "caps": {"perCall": str(c.per_call), "daily": s(c.daily), "total": s(c.total),
                     "session": s(c.session), "ratePerMinute": c.rate_per_minute,
                     "approvalThreshold": s(self.approval_threshold)},
            "frozen": t.frozen,
        }


def load_signer(settings: Settings, password_prompt: Callable[[], str] | None = None) -> Signer:
    """The paying key from IMAGINE_PRIVATE_KEY or an encrypted keystore. The key never leaves the signer."""
    if settings.private_key is not None:
        return PrivateKeySigner(settings.private_key.get_secret_value())
    if settings.keystore is not None:
        from eth_account import Account

        try:
            keyfile = json.loads(settings.keystore.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read keystore {settings.keystore}: {type(exc).__name__}") from None
        if settings.keystore_password is not None:
            password = settings.keystore_password.get_secret_value()
        elif password_prompt is not None:
            password = password_prompt()
        else:
            raise ConfigurationError("the keystore needs a password: set IMAGINE_KEYSTORE_PASSWORD")
        try:
            return PrivateKeySigner(bytes(Account.decrypt(keyfile, password)))
        except ValueError:
            raise ConfigurationError("the keystore password is wrong (or the keystore is damaged)") from None
    raise ConfigurationError(
        "no paying wallet: set IMAGINE_PRIVATE_KEY (0x hex) or IMAGINE_KEYSTORE, or create one with "
        "`imagine-agent wallet new`"
    )


def policy_from(settings: Settings) -> PaymentPolicy:
    caps = Caps(
        per_call=settings.atomic("max_per_call") or 0,
        daily=settings.atomic("daily_cap"),
        total=settings.atomic("total_cap"),
        session=settings.atomic("session_cap"),
        rate_per_minute=settings.rate_per_minute,
    )
    return PaymentPolicy(
        caps=caps,
        networks=frozenset(settings.networks),
        pay_to=frozenset(settings.pay_to),
        approval_threshold=settings.atomic("approval_threshold"),
        max_validity_seconds=settings.max_validity_seconds,
    )


@dataclass
class ImagineService:
    """Quote, pay, generate, wait, download; budget and receipts. Build it with ``ImagineService.create``."""

    client: ImagineClient
    wallet: Wallet
    settings: Settings
    sandbox: Any = None
    output_dir: Path = field(default_factory=lambda: Path("imagine-output"))
    _closers: list[Callable[[], None]] = field(default_factory=list)

    # ---------------------------------------------------------------------------------------- building
    @classmethod
    def create(
        cls,
        settings: Settings | None = None,
        *,
        approver: Approver | None = None,
        signer: Signer | None = None,
        ledger: Ledger | None = None,
        transport: Any = None,
        password_prompt: Callable[[], str] | None = None,
    ) -> ImagineService:
        """From settings: the real API when ``base_url`` is set, else the embedded sandbox."""
        settings = settings or Settings()
        closers: list[Callable[[], None]] = []
        sandbox = None
        base_url = settings.base_url
        poll = PollPolicy(settings.poll_first, settings.poll_floor, settings.poll_cap)
        if base_url is None:
            from .sandbox import SandboxConfig, SandboxServer

            sandbox = SandboxServer(SandboxConfig(speed=settings.sandbox_speed))
            sandbox.start()
            closers.append(sandbox.stop)
            base_url = sandbox.url
            signer = signer or PrivateKeySigner.generate()
            poll = poll.scaled(settings.sandbox_speed)
            if ledger is None:
                tmp = tempfile.TemporaryDirectory(prefix="imagine-sandbox-")
                closers.append(tmp.cleanup)
                ledger = open_ledger(Path(tmp.name) / "ledger.sqlite3")
                closers.insert(0, ledger.close)
        signer = signer or load_signer(settings, password_prompt)
        if ledger is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            ledger = open_ledger(settings.ledger_location)
            closers.insert(0, ledger.close)
        wallet = Wallet(signer, ledger, policy_from(settings), approver=approver, session_id=uuid.uuid4().hex)
        if settings.rpc_url and sandbox is None:  # balance pre-flight on the real chain (not the embedded demo)
            from .chain import UsdcChain

            chain = UsdcChain(settings.rpc_url)
            closers.append(chain.close)
            wallet.balance_of = chain.usdc_balance
        client = ImagineClient(
            base_url,
            wallet=wallet,
            transport=transport,
            timeout=settings.timeout,
            poll=poll,
            template_data_as_string=settings.template_data_as_string,
            max_download_bytes=settings.max_download_mb * 1024 * 1024,
            allow_private_image_urls=settings.allow_private_image_urls,
        )
        closers.insert(0, client.close)
        return cls(client, wallet, settings, sandbox=sandbox, output_dir=Path("imagine-output"), _closers=closers)

    def queue_approvals(self, requester: str) -> None:
        """No human at hand (MCP, a bot, a plugin without callback): payments needing one go to the queue.

        Keeps an approver already set (an interactive human) and only fills the gap.
        """
        from .approvals import QueueApprover

        if self.wallet.approver is None:
            self.wallet.approver = QueueApprover(self.ledger, requester, self.settings.approval_ttl,
                                                 session_id=self.wallet.session_id)

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()

    def __enter__(self) -> ImagineService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None

    @property
    def ledger(self) -> Ledger:
        return self.wallet.ledger

    # ---------------------------------------------------------------------------------------- requests
    def build_request(
        self,
        prompt: str,
        *,
        duration: float | None = None,
        image: str | None = None,
        auto_clank: bool | None = None,
        auto_enhance: bool | None = None,
        remix: str | None = None,
        video_model: str | None = None,
    ) -> tuple[CreateRequest, ImageFile | None]:
        """Validate user input (money-safety rule 7). A local file path as image becomes an upload."""
        image_file = None
        if image and not image.startswith(("http://", "https://", "data:")):
            image_file = ImageFile.from_path(image)
            image = None
        request = CreateRequest.build(
            prompt, duration=duration, image=image, auto_clank=auto_clank or None,
            auto_enhance=auto_enhance or None, sora_video_id=remix, video_model=video_model,
        )
        return self.client._request(request, {}), image_file

    # ------------------------------------------------------------------------------------------ quote
    def quote(self, prompt: str, *, all_models: bool = False, **options: Any) -> QuoteResult:
        """The price of a request; ``all_models``: also each listed model's price for it (one free 402 each)."""
        request, image_file = self.build_request(prompt, **options)
        quote = self.client.quote(request, image_file=image_file)
        prices: dict[str, int] = {}
        if all_models:
            for model in quote.models:
                try:
                    other, _ = self.build_request(prompt, **{**options, "video_model": model})
                    prices[model] = self.client.quote(other, image_file=image_file).amount
                except InvalidRequestError:
                    continue  # this model does not make this request (e.g. its durations): no price
        refusal = code = None
        try:
            self.wallet.policy.check(quote.requirement, self.client.create_url)
        except ImagineError as exc:
            refusal, code = str(exc), exc.code
        remaining = self.wallet.remaining()
        if refusal is None and quote.amount > remaining:
            refusal = f"{format_usdc(quote.amount)} is more than the {format_usdc(remaining)} left in the budget"
            would = self.ledger.would_refuse(quote.amount, self.wallet.policy.caps, session_id=self.wallet.session_id)
            code = would.code if would is not None else "budget"
        return QuoteResult(quote, refusal is None, refusal, remaining, code, prices)

    def models(self) -> tuple[list[str], str | None]:
        """The video models the server sells and its default, from its live 402 (cached briefly)."""
        return self.client.models()

    # --------------------------------------------------------------------------------------- generate
    def generate(
        self,
        prompt: str,
        *,
        wait: bool = True,
        download: bool = True,
        output_dir: str | Path | None = None,
        on_progress: Callable[[TaskStatus], None] | None = None,
        timeout: float | None = None,
        attach: bool = True,
        **options: Any,
    ) -> GenerationOutcome:
        """Pay for one video (at most once per identical request) and, by default, wait and download it."""
        request, image_file = self.build_request(prompt, **options)
        rhash = request_hash(self.client.base_url, request, image_file)
        ask = self._coin_question(request)
        body = json.dumps(request.body(template_data_as_string=False))
        with collect_warnings() as warnings, approval_context(body, require_reason=ask):
            job, attached = self._submit(request, image_file, rhash, attach)
        outcome = GenerationOutcome(job.task_id, job.last, job.payment, request.prompt, attached=attached,
                                    sandbox=self.is_sandbox, warnings=warnings)
        if not wait:
            return outcome
        outcome.status = self._wait(job, on_progress, timeout)
        if download:
            outcome.downloads = self.download(job.task_id, output_dir, status=outcome.status)
        return outcome

    def resume_approval(self, approval_id: str, **kwargs: Any) -> GenerationOutcome:
        """Generate the exact request a queued approval was for (``wait_for_video`` with an approval id).

        Awaiting: ``AwaitingApprovalError`` again; denied: ``ApprovalDeniedError``. Approved: the request is
        rebuilt from the queue and paid through the wallet as usual, which checks and uses the approval.
        """
        from .errors import ApprovalDeniedError, AwaitingApprovalError, InvalidRequestError
        from .ledger import ApprovalState

        try:
            entry = self.ledger.get_approval(approval_id)
        except KeyError:
            raise InvalidRequestError(f"no approval {approval_id!r} in the queue") from None
        if entry.state is ApprovalState.AWAITING:
            raise AwaitingApprovalError(f"approval {entry.id} is still waiting for the operator", approval_id=entry.id)
        if entry.state is ApprovalState.DENIED:
            raise ApprovalDeniedError(f"the operator denied approval {entry.id}; a denial is final. Nothing was paid.")
        if entry.request_json is None:
            raise InvalidRequestError(f"approval {entry.id} kept no request to resume: ask for the same video again")
        body = json.loads(entry.request_json)
        template = body.get("templateData") or {}
        return self.generate(body["prompt"], duration=template.get("duration"), image=template.get("image"),
                             auto_clank=template.get("autoClank"), auto_enhance=template.get("autoEnhance"),
                             remix=template.get("soraVideoId"), **kwargs)

    def _coin_question(self, request: CreateRequest) -> str | None:
        """A coin under autoClank=ask on a surface with no human (the queue approver): the operator decides."""
        from .approvals import QueueApprover

        coin = request.template_data is not None and request.template_data.auto_clank is True
        if not (coin and self.settings.auto_clank == "ask" and isinstance(self.wallet.approver, QueueApprover)):
            return None
        return (f"it deploys a coin (autoClank) whose creator is the paying wallet {self.wallet.address}; "
                "the operator's policy is 'ask'")

    def _submit(self, request: CreateRequest, image_file: ImageFile | None, rhash: str,
                attach: bool) -> tuple[Job, bool]:
        if attach:
            existing = self.ledger.find_open(rhash)
            job = self._attach(existing, request, image_file) if existing is not None else None
            if job is not None:
                return job, True
        job = self.client.create(request, image_file=image_file, new=not attach)
        self.ledger.upsert_task(
            job.task_id,
            payment_id=job.payment.payment_id if job.payment and job.payment.paid_by == "x402" else None,
            request_hash=rhash,
            prompt=request.prompt,
            status="queued",
        )
        return job, False

    def _attach(self, record: PaymentRecord, request: CreateRequest, image_file: ImageFile | None) -> Job | None:
        """A paid (or possibly paid) job for this exact request exists: follow it instead of paying again.

        None when the earlier attempt never signed: nothing can settle from it, so paying now is safe.
        """
        if record.state == PaymentState.PAID and record.task_id:
            job = self.client.job(record.task_id)
            job.payment = _payment_info(record)
            return job
        if record.state == PaymentState.RESERVED and record.header is None:
            return None
        if record.state == PaymentState.REJECTED:
            wait = max(0, int((record.valid_before or 0) - time.time()) + 1)
            raise PaymentRejectedError(
                f"the server rejected the last payment for this exact request ({record.reason}). Its "
                f"authorization stays valid {wait} s more; a new one is signed only after it expires. "
                f"Try again in {wait} s.",
                reason=record.reason or "",
            )
        if record.state == PaymentState.RESERVED and record.valid_before and record.valid_before > time.time() + 6:
            # Signed and journaled, maybe sent, by a process that stopped: re-send the very same header.
            job = self.client.resend(request, self.wallet.resume(record, _requirement(record)),
                                     image_file=image_file)
            self.ledger.upsert_task(job.task_id, payment_id=record.id, request_hash=record.request_hash,
                                    prompt=request.prompt, status="queued")
            return job
        raise PaymentStateUnknownError(
            f"a payment for this exact request ({format_usdc(record.amount)}, payment {record.id}) is "
            f"{record.state.value}; it may have settled. Run `imagine-agent reconcile`, or pass --new to pay "
            "again on purpose.",
            payment_id=record.id,
            nonce=record.nonce,
        )

    def _wait(self, job: Job, on_progress: Callable[[TaskStatus], None] | None,
              timeout: float | None, initial_delay: float | None = None) -> TaskStatus:
        def update(status: TaskStatus) -> None:
            self.ledger.upsert_task(job.task_id, status=status.status, progress=status.progress)
            if on_progress is not None:
                on_progress(status)

        try:
            status = job.wait(timeout=timeout or self.settings.wait_timeout, on_update=update,
                              initial_delay=initial_delay)
        except ImagineError as exc:
            from .errors import GenerationFailedError, TaskNotFoundError

            if isinstance(exc, GenerationFailedError):
                self.ledger.upsert_task(job.task_id, status="failed", result_json=json.dumps(exc.body))
            elif isinstance(exc, TaskNotFoundError):
                self.ledger.upsert_task(job.task_id, status="not_found")
            raise
        self._record(job.task_id, status)
        return status

    def _record(self, task_id: str, status: TaskStatus) -> None:
        self.ledger.upsert_task(
            task_id,
            status=status.status,
            progress=status.progress,
            video_url=status.video_url,
            preview_url=status.preview_url,
            result_json=json.dumps(status.result.to_wire()) if status.result else None,
        )

    # -------------------------------------------------------------------------------- status and files
    def status(self, task_id: str) -> TaskStatus:
        status = self.client.status(task_id)
        if self.ledger.get_task(task_id) is not None or status.status != "not_found":
            self._record(task_id, status)
        return status

    def wait(self, task_id: str, *, on_progress: Callable[[TaskStatus], None] | None = None,
             timeout: float | None = None) -> TaskStatus:
        """Resume waiting on any task by id (polls at once, then on schedule); a failure is journaled."""
        return self._wait(self.client.job(task_id), on_progress, timeout, initial_delay=0)

    def download(self, task_id: str, output_dir: str | Path | None = None, *,
                 status: TaskStatus | None = None) -> Downloads:
        status = status or self.status(task_id)
        directory = Path(output_dir) if output_dir is not None else self.output_dir
        files = self.client.download(status, directory, name=task_id)
        self.ledger.upsert_task(task_id, video_path=str(files.video))
        return files

    # ---------------------------------------------------------------------------------------- budget
    def budget(self) -> BudgetReport:
        return BudgetReport(self.wallet.budget(), self.wallet.policy.caps, self.wallet.policy.approval_threshold,
                            self.wallet.address)

    def receipts(self, limit: int | None = None) -> list[PaymentRecord]:
        return self.ledger.payments(limit=limit)

    def pending(self) -> list[TaskRecord]:
        return self.ledger.tasks(pending_only=True)

    def freeze(self, reason: str = "") -> None:
        self.ledger.set_frozen(True, reason=reason)

    def unfreeze(self) -> None:
        self.ledger.set_frozen(False)

    def reconcile(self, now: float | None = None) -> list[PaymentRecord]:
        """Settle what can be proven, and nothing else.

        Never signed → released (``now``: the local clock, for that and for the no-RPC rules). With an RPC
        (``IMAGINE_RPC_URL``) the chain decides, after proving it is the right chain with USDC's code there:
        nonce used → paid with its transaction (or cancelled, if ``cancelAuthorization`` used it); unused once
        the latest block's time passed validBefore → released; anything else stays. An RPC error raises and
        changes nothing further. Without an RPC, only a payment the server explicitly rejected is released
        once expired; anything else that expired in flight becomes ``unknown`` (counted as spent).
        """
        from .chain import UsdcChain, examine
        from .x402 import decode_payment_header

        now = time.time() if now is None else now
        records = self.ledger.payments(states=[PaymentState.REJECTED, PaymentState.UNKNOWN,
                                               PaymentState.RESERVED, PaymentState.PENDING])
        signed = [r for r in records if r.header is not None and r.nonce is not None and r.valid_before is not None]
        signed_ids = {r.id for r in signed}
        chain = UsdcChain(self.settings.rpc_url) if self.settings.rpc_url and signed else None
        changed = []
        try:
            if chain is not None:
                for network in sorted({r.network for r in signed}):
                    chain.check(network)  # before reading anything: the right chain, USDC's code there
                latest = chain.block()
            for record in records:
                expired = record.valid_before is not None and record.valid_before < now
                if record.state == PaymentState.RESERVED and record.header is None:
                    if record.created_at > now - SIGNING_GRACE:
                        continue  # a live process may be signing it right now
                    self.ledger.release(record.id, reason="never signed (the process stopped before signing)")
                elif chain is not None and record.id in signed_ids:
                    assert record.header is not None and record.nonce is not None and record.valid_before is not None
                    valid_after = int(decode_payment_header(record.header).payload.authorization.valid_after)
                    found = examine(chain, asset=record.asset, payer=record.payer, nonce=record.nonce,
                                    valid_after=valid_after, valid_before=record.valid_before,
                                    transaction=record.transaction, latest=latest)
                    if found.outcome == "paid":
                        self.ledger.mark_paid(record.id, task_id=record.task_id, transaction=found.transaction,
                                              reason=found.reason)
                    elif found.outcome == "cancelled":
                        if record.state == PaymentState.RESERVED:  # the ledger cancels only what went out
                            self.ledger.mark_unknown(record.id, reason="journaled when the process stopped")
                        self.ledger.mark_cancelled(record.id, reason=found.reason)
                    elif found.outcome == "released":
                        self.ledger.release(record.id, reason=found.reason)
                    else:
                        continue
                elif record.state == PaymentState.REJECTED and expired:
                    self.ledger.release(record.id, reason="rejected by the server and expired unsettled")
                elif record.state == PaymentState.RESERVED and expired:
                    self.ledger.mark_unknown(record.id, reason="in flight when the process stopped; expired")
                else:
                    continue
                changed.append(self.ledger.get(record.id))
        finally:
            if chain is not None:
                chain.close()
        return changed

    # ------------------------------------------------------------------------------------------ async
    async def aquote(self, prompt: str, **options: Any) -> QuoteResult:
        return await asyncio.to_thread(self.quote, prompt, **options)

    async def agenerate(self, prompt: str, *, on_progress: ProgressCallback | None = None,
                        **options: Any) -> GenerationOutcome:
        """``generate`` off the event loop; ``on_progress`` (sync or async) runs on the loop."""
        return await _in_thread(self.generate, on_progress, prompt, **options)

    async def astatus(self, task_id: str) -> TaskStatus:
        return await asyncio.to_thread(self.status, task_id)

    async def await_task(self, task_id: str, *, on_progress: ProgressCallback | None = None,
                         **options: Any) -> TaskStatus:
        return await _in_thread(self.wait, on_progress, task_id, **options)

    async def abudget(self) -> BudgetReport:
        return await asyncio.to_thread(self.budget)


ProgressCallback = Callable[[TaskStatus], Any]


async def _in_thread(fn: Callable[..., T], on_progress: ProgressCallback | None, *args: Any, **kwargs: Any) -> T:
    """Run a blocking service call in a worker thread; hand its progress to ``on_progress`` on this loop."""
    if on_progress is None:
        return await asyncio.to_thread(fn, *args, **kwargs)
    loop = asyncio.get_running_loop()
    updates: asyncio.Queue[TaskStatus | None] = asyncio.Queue()

    def forward(status: TaskStatus) -> None:  # runs in the worker thread
        loop.call_soon_threadsafe(updates.put_nowait, status)

    task = asyncio.ensure_future(asyncio.to_thread(fn, *args, on_progress=forward, **kwargs))
    task.add_done_callback(lambda _: updates.put_nowait(None))
    while (status := await updates.get()) is not None:
        result = on_progress(status)
        if inspect.isawaitable(result):
            await result
    return await task


def _payment_info(record: PaymentRecord) -> PaymentInfo:
    return PaymentInfo(record.id, record.amount, record.asset, record.network, record.pay_to, record.payer,
                       record.transaction)


def _requirement(record: PaymentRecord) -> PaymentRequirements:
    return PaymentRequirements(
        scheme="exact", network=record.network, max_amount_required=str(record.amount), resource=record.resource,
        pay_to=record.pay_to, max_timeout_seconds=60, asset=record.asset,
    )

