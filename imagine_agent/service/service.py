"""ImagineService: the one orchestrator of a paid job (client + wallet + ledger).

Every surface — CLI, LangChain tools, ElizaOS plugin, MCP server — calls this and only formats the
result, so payment logic exists once. With no base URL configured it starts the embedded sandbox
with a throwaway, sandbox-funded key: no real money can move.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..client import AsyncJob, Downloads, ImagineClient, Job, Quote, request_hash
from ..config import SANDBOX_NOTICE as SANDBOX_NOTICE  # re-exported: cli imports it from here
from ..config import Settings
from ..errors import (
    ImagineError,
    InvalidRequestError,
    PaymentInFlightError,
    PaymentRejectedError,
    PaymentStateUnknownError,
)
from ..flows import PaymentInfo
from ..history import RenderHistory
from ..ledger import Ledger, PaymentRecord, PaymentState, TaskRecord
from ..models import CreateRequest, ImageFile, PaymentRequirements, TaskStatus
from ..money import format_usdc
from ..origin import origin_of
from ..wallet import Approver, PersonApproval, Wallet, approval_context, collect_warnings, person_approved
from ..x402 import Signer
from .answers import GenerationOutcome, QuoteResult
from .books import Books
from .books import BudgetReport as BudgetReport
from .build import SIGNING_GRACE as SIGNING_GRACE
from .build import ReadOnlySigner as ReadOnlySigner
from .build import assemble
from .build import keystore_path as keystore_path
from .build import public_address as public_address
from .decisions import Asker, CoinDecision, PersonDecision, decide_coin, person_needed, price_bound

__all__ = ["GenerationOutcome", "ImagineService", "ProgressCallback", "QuoteResult", "check_output_dir"]

T = TypeVar("T")
FINISHED = ("completed", "failed", "not_found")
_LOCKS_GUARD = threading.Lock()
_REQUEST_LOCKS: dict[str, threading.Lock] = {}


def _request_lock(request_hash: str) -> threading.Lock:
    """One lock per request hash in this process: identical calls in flight at once pay once (rule 4).

    Across processes the ledger decides (``reserve``/``journal_authorization`` refuse a second signature).
    """
    with _LOCKS_GUARD:
        return _REQUEST_LOCKS.setdefault(request_hash, threading.Lock())


def _model_of(request: CreateRequest) -> str:
    """The model a task was asked for, as the history keys it ('' : the server's default)."""
    td = request.template_data
    return (td.video_model if td is not None else None) or ""


def _duration_of(request: CreateRequest) -> float:
    td = request.template_data
    return float(td.duration if td is not None else 8)


@dataclass
class ImagineService:
    """Quote, pay, generate, wait, download; budget and receipts. Build it with ``ImagineService.create``."""

    client: ImagineClient
    wallet: Wallet
    settings: Settings
    sandbox: Any = None
    output_dir: Path = field(default_factory=lambda: Path("imagine-output"))
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _transport: Any = None
    # Prices quoted in this run, by request hash: a later generate of the same request pays at most that.
    _quoted: dict[str, int] = field(default_factory=dict, repr=False)
    external_sandbox: bool = False  # a loopback server that identifies itself as the sandbox

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
        parts = assemble(
            settings,
            approver=approver,
            signer=signer,
            ledger=ledger,
            transport=transport,
            password_prompt=password_prompt,
        )
        return cls(
            parts.client,
            parts.wallet,
            settings,
            sandbox=parts.sandbox,
            output_dir=Path("imagine-output"),
            _closers=parts.closers,
            _transport=transport,
            external_sandbox=parts.external,
        )

    def queue_approvals(self, requester: str) -> None:
        """No human at hand (MCP, a bot, a plugin without callback): payments needing one go to the queue.

        Keeps an approver already set (an interactive human) and only fills the gap.
        """
        from ..wallet.approval import QueueApprover

        if self.wallet.approver is None:
            self.wallet.approver = QueueApprover(
                self.ledger, requester, self.settings.approval_ttl, session_id=self.wallet.session_id
            )

    def __repr__(self) -> str:  # never the settings' URLs or the key: see redact.py
        return f"ImagineService(base_url={self.client.base_url!r}, wallet={self.wallet!r}, sandbox={self.is_sandbox})"

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
        """Sandbox money: the embedded sandbox, or a loopback server that identifies itself as the sandbox."""
        return self.sandbox is not None or self.external_sandbox

    @property
    def is_embedded_sandbox(self) -> bool:
        """The in-process sandbox with a throwaway wallet."""
        return self.sandbox is not None

    @property
    def ledger(self) -> Ledger:
        return self.wallet.ledger

    # ---------------------------------------------------------------------------------------- decisions
    # Surfaces ask these (never ``wallet.policy`` or ``settings.auto_clank``) and render the answer.
    @property
    def address(self) -> str:
        """The paying wallet's address (public)."""
        return self.wallet.address

    @property
    def approval_threshold(self) -> int | None:
        """Atomic USDC over which a payment waits for a person (None: never)."""
        return self.wallet.policy.approval_threshold

    @property
    def coin_policy(self) -> str:
        """The operator's autoClank policy."""
        return self.settings.auto_clank

    def decide_coin(
        self,
        requested: bool,
        *,
        asker: Asker = "agent",
        person_approved: bool = False,
        assume_approved: bool = False,
        policy: str | None = None,
    ) -> CoinDecision:
        """Rule 6 for one request (``policy``: an operator-side override for this run, else the configured one)."""
        return decide_coin(
            policy or self.settings.auto_clank,
            requested,
            asker=asker,
            person_approved=person_approved,
            assume_approved=assume_approved,
        )

    def person_needed(self, amount: int | None, coin: CoinDecision | None = None) -> PersonDecision:
        """Rule 5 for one quoted price (and coin decision): must a person approve it?"""
        return person_needed(amount, self.approval_threshold, coin=coin, payer=self.wallet.address)

    def approved_by_person(self, quote: Quote, *, surface: str, approved_by: str = "") -> Any:
        """Context manager: a person approved paying ``quote`` (its price as the ceiling, its payee and network)
        through ``surface``; the wallet records it in the ledger when the payment made inside uses it."""
        req = quote.requirement
        return person_approved(
            PersonApproval(req.amount, surface, approved_by or surface, pay_to=req.pay_to, network=req.network)
        )

    @property
    def approver(self) -> Approver | None:
        """The wallet's one approver (an interactive person, a callback, or the operator's queue)."""
        return self.wallet.approver

    @property
    def approvals_queued(self) -> bool:
        """Whether the operator's approvals queue decides what needs a person (no one to ask here)."""
        return bool(getattr(self.wallet.approver, "records_itself", False))

    def ask_approver(self, quote: Quote, *, reasons: tuple[str, ...], description: str) -> bool:
        """Ask the wallet's interactive approver about ``quote`` before paying (a coin under ``ask``); its answer
        is written to the audit naming the surface. False when there is no one to ask."""
        from ..wallet import ApprovalRequest

        approver = self.wallet.approver
        if approver is None or self.approvals_queued:
            return False
        req = quote.requirement
        ask = ApprovalRequest(
            req.amount, req.pay_to, req.network, req.resource, description, asset=req.asset, reasons=reasons
        )
        yes = bool(approver(ask))
        self.audit_decision(yes, description, str(getattr(approver, "surface", None) or "callback"), quote=quote)
        return yes

    def audit_decision(self, approved: bool, what: str, surface: str, *, quote: Quote | None = None) -> None:
        """Write a person's answer given outside a payment (a coin confirmed at a terminal, a HITL rejection) to
        the audit, naming the surface; a payment's own approvals are recorded by the wallet."""
        req = quote.requirement if quote is not None else None
        self.ledger.record_event(
            "approval",
            "approved" if approved else "approval_denied",
            f"{what}: {'approved' if approved else 'not approved'} by {surface}",
            source=surface[:100],
            amount=req.amount if req else None,
            network=req.network if req else None,
            pay_to=req.pay_to if req else None,
            session_id=self.wallet.session_id,
        )

    def approval(self, approval_id: str) -> Any:
        """The approvals-queue entry with this id, or None."""
        try:
            return self.ledger.get_approval(approval_id)
        except KeyError:
            return None

    def task_record(self, task_id: str) -> TaskRecord | None:
        """What the ledger knows of a task (its payment, its download), or None."""
        return self.ledger.get_task(task_id)

    def payment_record(self, payment_id: str) -> PaymentRecord:
        return self.ledger.get(payment_id)

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
            prompt,
            duration=duration,
            image=image,
            auto_clank=auto_clank or None,
            auto_enhance=auto_enhance or None,
            sora_video_id=remix,
            video_model=video_model,
        )
        return self.client._request(request, {}), image_file

    # ------------------------------------------------------------------------------------------ quote
    def quote(self, prompt: str, *, all_models: bool = False, **options: Any) -> QuoteResult:
        """The price of a request; ``all_models``: also each listed model's price for it (one free 402 each)."""
        request, image_file = self.build_request(prompt, **options)
        quote = self.client.quote(request, image_file=image_file)
        self._quoted[request_hash(self.client.base_url, request, image_file)] = quote.amount
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
        remaining = self.wallet.remaining(sandbox=self.is_sandbox)
        if refusal is None and quote.amount > remaining:
            refusal = (
                f"{format_usdc(quote.amount)} is more than the largest next payment the budget allows "
                f"({format_usdc(remaining)})"
            )
            would = self.ledger.would_refuse(
                quote.amount,
                self.wallet.policy.caps,
                session_id=self.wallet.session_id,
                sandbox=self.is_sandbox,
                chain_decides=self.wallet.chain_decides,
            )
            code = would.code if would is not None else "budget"
        return QuoteResult(
            quote, refusal is None, refusal, remaining, code, sandbox=self.is_sandbox, model_prices=prices
        )

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
        max_amount: int | None = None,
        **options: Any,
    ) -> GenerationOutcome:
        """Pay for one video (at most once per identical request) and, by default, wait and download it.

        The price paid is at most ``max_amount``, or the price this service quoted for the same request
        in this run: a higher price at payment time is refused with nothing signed (rule 8).
        """
        request, image_file = self.build_request(prompt, **options)
        if wait and download:
            check_output_dir(Path(output_dir) if output_dir is not None else self.output_dir)
        rhash = request_hash(self.client.base_url, request, image_file)
        ask = self._coin_question(request)
        body = json.dumps(request.body(template_data_as_string=False))
        bound = price_bound(max_amount, self._quoted.get(rhash))
        with collect_warnings() as warnings, approval_context(body, require_reason=ask):
            job, attached = self._submit(request, image_file, rhash, attach, bound)
        outcome = GenerationOutcome(
            job.task_id,
            job.last,
            job.payment,
            request.prompt,
            attached=attached,
            sandbox=self.is_sandbox,
            warnings=warnings,
        )
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
        from ..errors import ApprovalDeniedError, AwaitingApprovalError, InvalidRequestError
        from ..ledger import ApprovalState

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
        prompt, options = self.approved_request(entry)
        # The approved price is the ceiling; the wallet pays only with this approval's payee and network.
        return self.generate(prompt, max_amount=entry.amount, **options, **kwargs)

    def approved_request(self, entry: Any) -> tuple[str, dict[str, Any]]:
        """The exact request an approval was given for (every templateData field), as ``generate`` arguments.

        Raises when the rebuilt request is not the approved one (its hash differs): that needs a new approval.
        """
        from ..errors import InvalidRequestError

        try:
            request = CreateRequest.model_validate(json.loads(entry.request_json))
        except ValueError:
            raise InvalidRequestError(f"approval {entry.id} kept a request that no longer reads: ask again") from None
        td = request.template_data
        options: dict[str, Any] = (
            {}
            if td is None
            else {
                "duration": td.duration,
                "image": td.image,
                "auto_clank": td.auto_clank,
                "auto_enhance": td.auto_enhance,
                "remix": td.sora_video_id,
                "video_model": td.video_model,
            }
        )
        rebuilt, image_file = self.build_request(request.prompt, **options)
        if request_hash(self.client.base_url, rebuilt, image_file) != entry.request_hash:
            raise InvalidRequestError(
                f"approval {entry.id} was given for another request (or another API) than the one rebuilt from it; "
                "nothing was paid. Ask for the video again: it needs a new approval."
            )
        return request.prompt, options

    def _coin_question(self, request: CreateRequest) -> str | None:
        """A coin under autoClank=ask on a surface with no human (the queue approver): the operator decides."""
        coin = request.template_data is not None and request.template_data.auto_clank is True
        if not getattr(self.wallet.approver, "records_itself", False):
            return None  # an interactive surface asked its person before paying
        decision = self.decide_coin(coin, person_approved=False, assume_approved=True)
        return (
            person_needed(None, None, coin=decision, payer=self.wallet.address).reasons[0]
            if decision.needs_person
            else None
        )

    def _submit(
        self,
        request: CreateRequest,
        image_file: ImageFile | None,
        rhash: str,
        attach: bool,
        max_amount: int | None = None,
    ) -> tuple[Job, bool]:
        with _request_lock(rhash):
            if attach:
                existing = self.ledger.find_open(rhash, chain_decides=self.wallet.chain_decides)
                if (
                    existing is not None
                    and existing.state != PaymentState.PAID
                    and existing.valid_before
                    and existing.valid_before < time.time()
                    and self.wallet.reconcile_now()
                ):
                    existing = self.ledger.find_open(rhash, chain_decides=self.wallet.chain_decides)
                job = self._attach(existing, request, image_file) if existing is not None else None
                if job is not None:
                    return job, True
            try:
                job = self.client.create(request, image_file=image_file, new=not attach, max_amount=max_amount)
            except PaymentInFlightError as exc:
                # Another process signed this very request first (the ledger decided): attach to its payment.
                job = self._attach(self.ledger.get(exc.payment_id), request, image_file) if attach else None
                if job is None:
                    raise
                return job, True
            self.ledger.upsert_task(
                job.task_id,
                payment_id=job.payment.payment_id if job.payment and job.payment.paid_by == "x402" else None,
                request_hash=rhash,
                prompt=request.prompt,
                status="queued",
                origin=origin_of(self.client.base_url),
                model=_model_of(request),
                duration=_duration_of(request),
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
            job = self.client.resend(request, self.wallet.resume(record, _requirement(record)), image_file=image_file)
            self.ledger.upsert_task(
                job.task_id,
                payment_id=record.id,
                request_hash=record.request_hash,
                prompt=request.prompt,
                status="queued",
                origin=origin_of(self.client.base_url),
                model=_model_of(request),
                duration=_duration_of(request),
            )
            return job
        raise PaymentStateUnknownError(
            f"a payment for this exact request ({format_usdc(record.amount)}, payment {record.id}) is "
            f"{record.state.value}; it may have settled. Run `imagine-agent reconcile`, or pass --new to pay "
            "again on purpose.",
            payment_id=record.id,
            nonce=record.nonce,
        )

    def _learn(self, job: Job | AsyncJob) -> None:
        """Hand the job how long recent jobs of its kind took here (from the ledger), if any did."""
        record = self.ledger.get_task(job.task_id)
        if record is None or record.origin is None or record.model is None or record.duration is None:
            return
        brackets = self.ledger.completion_brackets(record.origin, record.model, record.duration)
        job.history = RenderHistory.of(brackets)
        if job.created_at is None:
            job.created_at = record.created_at

    @staticmethod
    def _timing(job: Job | AsyncJob) -> tuple[float | None, float | None]:
        """When the job was first seen completed and last seen unfinished (the ledger keeps the first set)."""
        return job.timing.completed, job.timing.last_unfinished if job.timing.completed is not None else None

    def _wait(
        self,
        job: Job,
        on_progress: Callable[[TaskStatus], None] | None,
        timeout: float | None,
        initial_delay: float | None = None,
    ) -> TaskStatus:
        self._learn(job)

        def update(status: TaskStatus) -> None:
            self.ledger.upsert_task(job.task_id, status=status.status, progress=status.progress)
            if on_progress is not None:
                on_progress(status)

        try:
            status = job.wait(
                timeout=timeout or self.settings.wait_timeout, on_update=update, initial_delay=initial_delay
            )
        except ImagineError as exc:
            self._journal_failure(job.task_id, exc)
            raise
        self._record(job.task_id, status, self._timing(job))
        return status

    def _journal_failure(self, task_id: str, exc: ImagineError) -> None:
        from ..errors import GenerationFailedError, TaskNotFoundError

        if isinstance(exc, GenerationFailedError):
            self.ledger.upsert_task(task_id, status="failed", result_json=json.dumps(exc.body))
        elif isinstance(exc, TaskNotFoundError):
            self.ledger.upsert_task(task_id, status="not_found")

    def _record(
        self, task_id: str, status: TaskStatus, timing: tuple[float | None, float | None] = (None, None)
    ) -> None:
        self.ledger.upsert_task(
            task_id,
            completed_at=timing[0],
            last_pending_at=timing[1],
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

    def wait(
        self, task_id: str, *, on_progress: Callable[[TaskStatus], None] | None = None, timeout: float | None = None
    ) -> TaskStatus:
        """Resume waiting on any task by id (polls at once, then on schedule); a failure is journaled."""
        return self._wait(self.client.job(task_id), on_progress, timeout, initial_delay=0)

    def download(
        self, task_id: str, output_dir: str | Path | None = None, *, status: TaskStatus | None = None
    ) -> Downloads:
        status = status or self.status(task_id)
        directory = Path(output_dir) if output_dir is not None else self.output_dir
        files = self.client.download(status, directory, name=task_id)
        self.ledger.upsert_task(task_id, video_path=str(files.video))
        return files

    # ------------------------------------------------------------------------ the books (one facade)
    @property
    def books(self) -> Books:
        """The operator facade over the books this service pays into (and the other ones, labelled)."""
        # The embedded sandbox settles on no chain; a sandbox server may settle on the chain IMAGINE_RPC_URL names.
        return Books.over(
            self.ledger,
            self.settings,
            sandbox=self.is_sandbox,
            kill_switch=self.wallet.kill_switch,
            address=self.wallet.address,
            session_id=self.wallet.session_id,
            policy=self.wallet.policy,
            rpc_url=None if self.is_embedded_sandbox else self.settings.rpc_url,
        )

    def budget(self) -> BudgetReport:
        return self.books.budget()

    def receipts(self, limit: int | None = None) -> list[PaymentRecord]:
        return self.books.receipts(limit)

    def sent_this_run(self) -> list[PaymentRecord]:
        """Payments whose signed header this service's wallet let out, newest first: what an interrupted
        command must report (the task id, what was paid) and whether a network failure may have cost money."""
        return [
            p
            for p in self.ledger.payments(limit=100)
            if p.session_id == self.wallet.session_id and p.header is not None
        ]

    def pending(self) -> list[TaskRecord]:
        return self.books.pending()

    def freeze(self, reason: str = "", *, source: str = "service") -> None:
        """The kill switch of the operator's ledger, which also stops sandbox payments of this data dir.

        Audited (by the ledger, in the same transaction) with ``source``, the surface that flipped it.
        """
        self.books.freeze(reason, source=source)

    def unfreeze(self, *, source: str = "service") -> None:
        self.books.unfreeze(source=source)

    def reconcile(self, now: float | None = None) -> list[PaymentRecord]:
        """Settle what can be proven, and nothing else (see ``books.reconcile_ledger``)."""
        return self.books.reconcile(now)

    # ------------------------------------------------------------------------------------------ async
    async def aquote(self, prompt: str, **options: Any) -> QuoteResult:
        return await asyncio.to_thread(self.quote, prompt, **options)

    async def agenerate(
        self, prompt: str, *, on_progress: ProgressCallback | None = None, **options: Any
    ) -> GenerationOutcome:
        """``generate`` off the event loop; ``on_progress`` (sync or async) runs on the loop."""
        return await _in_thread(self.generate, on_progress, prompt, **options)

    async def astatus(self, task_id: str) -> TaskStatus:
        return await asyncio.to_thread(self.status, task_id)

    async def await_task(
        self, task_id: str, *, on_progress: ProgressCallback | None = None, timeout: float | None = None
    ) -> TaskStatus:
        """``wait`` on the event loop, with no worker thread: cancelling the caller stops the polling at
        once (the task stays pending and resumable, its payment recorded). Journals like ``wait``."""
        if self._transport is not None:  # an injected sync transport cannot carry async requests
            return await _in_thread(self.wait, on_progress, task_id, timeout=timeout)
        from ..client import AsyncImagineClient

        c = self.client
        async with AsyncImagineClient(c.base_url, timeout=c.timeout, poll=c.poll, clock=c.clock) as client:
            job = client.job(task_id)
            await asyncio.to_thread(self._learn, job)
            try:
                async for status in job.iter_updates(
                    timeout=self.settings.wait_timeout if timeout is None else timeout, initial_delay=0
                ):
                    await asyncio.to_thread(
                        self.ledger.upsert_task, task_id, status=status.status, progress=status.progress
                    )
                    if on_progress is not None and inspect.isawaitable(result := on_progress(status)):
                        await result
            except ImagineError as exc:
                await asyncio.to_thread(self._journal_failure, task_id, exc)
                raise
        assert job.last is not None
        await asyncio.to_thread(self._record, task_id, job.last, self._timing(job))
        return job.last

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


def check_output_dir(directory: Path) -> None:
    """Before paying: the download directory must be a directory this process can write (rule 7)."""
    from ..errors import InvalidRequestError

    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if directory.exists() and not directory.is_dir():
        raise InvalidRequestError(
            f"the output path {str(directory)[:200]!r} is a file, not a directory: "
            "choose another --output. Nothing was paid."
        )
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidRequestError(
            f"the output directory {str(directory)[:200]!r} cannot be written here: "
            "choose another --output. Nothing was paid."
        )


def _payment_info(record: PaymentRecord) -> PaymentInfo:
    return PaymentInfo(
        record.id, record.amount, record.asset, record.network, record.pay_to, record.payer, record.transaction
    )


def _requirement(record: PaymentRecord) -> PaymentRequirements:
    return PaymentRequirements(
        scheme="exact",
        network=record.network,
        max_amount_required=str(record.amount),
        resource=record.resource,
        pay_to=record.pay_to,
        max_timeout_seconds=60,
        asset=record.asset,
    )
