"""The sandbox's whole world: simulated USDC balances, used nonces, settlements, jobs and armed faults.

Job status is computed from the clock on every read (no background tasks), so thousands of jobs cost
nothing and an injected fake clock moves every job at once. One re-entrant lock guards it all: the
app's event loop and test code in other threads both touch it, and verify-then-settle must be atomic.
"""

from __future__ import annotations

import random
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..models import PaymentPayload, PaymentRequirements
from . import media
from .config import TASK_TRAITS, Fault, SandboxConfig
from .paywall import Verdict, price_for, requirement_dict, settlement_transaction, verify_payment
from .settlement import ChainSettlement, SettlementFailed

__all__ = ["CreateOutcome", "Job", "Observation", "Order", "Sandbox", "Settlement"]

QUEUED_FRACTION = 0.1  # the first tenth of a job's time it is queued


@dataclass(frozen=True)
class Settlement:
    """One simulated on-chain ``transferWithAuthorization``."""

    payer: str
    nonce: str
    amount: int
    task_id: str | None
    transaction: str
    request_hash: str | None
    at: float
    network: str
    signature: str = field(repr=False)

    def to_wire(self) -> dict[str, Any]:
        return {
            "payer": self.payer,
            "nonce": self.nonce,
            "amount": str(self.amount),
            "taskId": self.task_id,
            "transaction": self.transaction,
            "requestHash": self.request_hash,
            "at": self.at,
        }


@dataclass(frozen=True)
class Order:
    """A validated create request: what to make and the hash that identifies it."""

    prompt: str
    duration: int | float
    request_hash: str
    model: str | None = None  # None: the sandbox's default model
    auto_clank: bool = False


@dataclass
class Job:
    """A generation task. Its status is a function of the clock plus the traits faults gave it."""

    task_id: str
    prompt: str
    duration: int | float
    created_at: float
    run_seconds: float
    fail_error: str | None = None
    fail_at: float = 1.0
    flapping: bool = False
    flap_reads: int = 0
    backwards: bool = False
    last_progress: int | None = None
    unreachable_video: bool = False
    model: str = ""
    auto_clank: bool = False
    payer: str | None = None
    transaction: str | None = None


@dataclass(frozen=True)
class Observation:
    status: Literal["queued", "processing", "completed", "failed"]
    progress: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class CreateOutcome:
    """What a paid create did: rejected (verdict says why), settled a new job, or replayed an old one."""

    verdict: Verdict
    settlement: Settlement | None = None
    job: Job | None = None
    replayed: bool = False


@dataclass
class _Armed:
    fault: Fault
    remaining: int  # -1: forever


class Sandbox:
    """State and operations behind the app; tests and the admin endpoints drive it directly."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.agent_id = str(uuid.UUID(int=random.Random(f"agent:{config.seed}").getrandbits(128), version=4))
        self._lock = threading.RLock()
        self._render_lock = threading.Lock()
        self._closed_socket: socket.socket | None = None
        self._balances: dict[str, int] = {}
        self._settlements: list[Settlement] = []
        self._by_nonce: dict[tuple[str, str], Settlement] = {}
        self._jobs: dict[str, Job] = {}
        self._armed: list[_Armed] = []
        self._surcharge = 0
        self._created = 0
        self._payment_ids: dict[str, str] = {}
        self.chain: ChainSettlement | None = None
        if config.rpc_url is not None and config.relayer_key is not None:
            self.chain = ChainSettlement(
                config.rpc_url, config.relayer_key.get_secret_value(), config.network, config.asset
            )
        self.reset()

    # ------------------------------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        """Back to the freshly created state: config balances, no payments or jobs, config faults re-armed."""
        with self._lock:
            self._balances = dict(self.config.balances)
            self._settlements = []
            self._by_nonce = {}
            self._jobs = {}
            self._armed = []
            self._surcharge = 0
            self._created = 0
            self._payment_ids = {}
            self.add_faults(self.config.faults)

    def close(self) -> None:
        """Release the socket that keeps the unreachable-video port closed."""
        with self._lock:
            if self._closed_socket is not None:
                self._closed_socket.close()
                self._closed_socket = None
            if self.chain is not None:
                self.chain.close()

    def now(self) -> float:
        return self.config.clock()

    # ----------------------------------------------------------------------------------------- money

    def balance(self, address: str) -> int:
        """Simulated USDC (atomic units) of an address; unseen payers start with ``default_balance``."""
        if self.chain is not None:
            return self.chain.balance(address)
        with self._lock:
            return self._balances.get(address.lower(), self.config.default_balance)

    def fund(self, address: str, amount: int) -> int:
        """Add (or, negative, remove) simulated USDC; returns the new balance, which cannot go below 0."""
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError("amount must be an integer of atomic USDC units")
        if self.chain is not None:
            raise ValueError("this sandbox settles on a chain: fund the address there (the devnet funds payers)")
        with self._lock:
            new = self.balance(address) + amount
            if new < 0:
                raise ValueError(f"balance of {address} would become negative")
            self._balances[address.lower()] = new
            return new

    def settlements(self) -> list[Settlement]:
        with self._lock:
            return list(self._settlements)

    def price(self, duration: int | float | None, model: str | None = None) -> int:
        """The current price of a video of this duration and model, including any ``price_change`` surcharge."""
        with self._lock:
            return price_for(self.config, duration, self._surcharge, model)

    def claim_payment_id(self, payment_id: str, signature: str) -> bool:
        """x402 ``payment-identifier``: False when this id already came with a different payment (409)."""
        with self._lock:
            seen = self._payment_ids.setdefault(payment_id, signature.lower())
            return seen == signature.lower()

    def raise_price(self, amount: int) -> None:
        with self._lock:
            self._surcharge += amount

    def requirement(self, resource: str, amount: int) -> PaymentRequirements:
        return PaymentRequirements.model_validate(requirement_dict(self.config, resource, amount))

    def _nonce_used(self, payer: str, nonce: str) -> bool:
        if (payer.lower(), nonce.lower()) in self._by_nonce:
            return True
        return self.chain is not None and self.chain.nonce_used(payer, nonce)

    def verify(self, payment: PaymentPayload, requirement: PaymentRequirements) -> Verdict:
        with self._lock:
            return verify_payment(
                payment,
                requirement,
                config=self.config,
                now=self.now(),
                nonce_used=self._nonce_used,
                balance_of=self.balance,
            )

    def _transfer(self, payment: PaymentPayload, payer: str) -> str:
        """Move the money: on the chain (raises ``SettlementFailed``) or in the simulated balances. The tx hash."""
        if self.chain is not None:
            return self.chain.settle(payment)
        self._balances[payer.lower()] = self.balance(payer) - int(payment.payload.authorization.value)
        return settlement_transaction(payer, payment.payload.authorization.nonce)

    def _settle(
        self, payment: PaymentPayload, payer: str, request_hash: str | None, task_id: str | None, transaction: str
    ) -> Settlement:
        auth = payment.payload.authorization
        amount = int(auth.value)
        settlement = Settlement(
            payer=payer,
            nonce=auth.nonce,
            amount=amount,
            task_id=task_id,
            transaction=transaction,
            request_hash=request_hash,
            at=self.now(),
            network=payment.network,
            signature=payment.payload.signature,
        )
        self._settlements.append(settlement)
        self._by_nonce[(payer.lower(), auth.nonce.lower())] = settlement
        return settlement

    def settle(self, payment: PaymentPayload, requirement: PaymentRequirements) -> tuple[Verdict, Settlement | None]:
        """Facilitator ``/settle``: verify and move the money atomically."""
        with self._lock:
            verdict = self.verify(payment, requirement)
            if not verdict.valid or verdict.payer is None:
                return verdict, None
            try:
                transaction = self._transfer(payment, verdict.payer)
            except SettlementFailed as failed:
                return Verdict(False, failed.reason, verdict.payer), None
            return verdict, self._settle(payment, verdict.payer, None, None, transaction)

    def pay_and_create(self, payment: PaymentPayload, requirement: PaymentRequirements, order: Order) -> CreateOutcome:
        """Verify, settle and submit the job in one step, or recognise an identical settled replay."""
        with self._lock:
            verdict = self.verify(payment, requirement)
            if verdict.reason == "nonce_already_used" and verdict.payer is not None:
                original = self._by_nonce.get((verdict.payer.lower(), payment.payload.authorization.nonce.lower()))
                if (  # on a chain the nonce may have been used (or cancelled) elsewhere: no original then
                    original is not None
                    and self.config.idempotent_replay
                    and original.request_hash == order.request_hash
                    and original.signature.lower() == payment.payload.signature.lower()
                    and original.task_id in self._jobs
                ):
                    return CreateOutcome(
                        Verdict(True, None, verdict.payer), original, self._jobs[original.task_id], True
                    )
            if not verdict.valid or verdict.payer is None:
                return CreateOutcome(verdict)
            try:
                transaction = self._transfer(payment, verdict.payer)
            except SettlementFailed as failed:
                return CreateOutcome(Verdict(False, failed.reason, verdict.payer))
            job = self._new_job(order)
            settlement = self._settle(payment, verdict.payer, order.request_hash, job.task_id, transaction)
            job.payer, job.transaction = settlement.payer, settlement.transaction
            return CreateOutcome(verdict, settlement, job)

    # ------------------------------------------------------------------------------------------ jobs

    def _new_job(self, order: Order) -> Job:
        rng = random.Random(f"{self.config.seed}:{self._created}")
        self._created += 1
        low, high = self.config.job_seconds
        job = Job(
            task_id=str(uuid.uuid4()),
            prompt=order.prompt,
            duration=order.duration,
            created_at=self.now(),
            run_seconds=rng.uniform(low, high) / self.config.speed,
            model=order.model or self.config.default_model,
            auto_clank=order.auto_clank,
        )
        for kind in sorted(TASK_TRAITS):
            fault = self.take({kind}, "create", only_untargeted=True)
            if fault is not None:
                self._apply_trait(job, fault)
        self._jobs[job.task_id] = job
        return job

    @staticmethod
    def _apply_trait(job: Job, fault: Fault) -> None:
        if fault.kind == "fail":
            job.fail_error = str(fault.param("error"))
            job.fail_at = float(fault.param("at"))
        elif fault.kind == "status_flapping":
            job.flapping = True
        elif fault.kind == "progress_backwards":
            job.backwards = True
        elif fault.kind == "unreachable_video":
            job.unreachable_video = True

    def job(self, task_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(task_id)

    def observe(self, task_id: str, *, peek: bool = False) -> tuple[Job, Observation] | None:
        """The task's status right now; None if unknown.

        A status read (``peek=False``) advances the flapping/backwards traits; a peek does not.
        """
        with self._lock:
            job = self._jobs.get(task_id)
            if job is None:
                return None
            return job, self._observe(job, peek)

    def _observe(self, job: Job, peek: bool) -> Observation:
        elapsed = self.now() - job.created_at
        run = job.run_seconds
        if job.fail_error is not None and elapsed >= job.fail_at * run:
            return Observation("failed", error=job.fail_error)
        if elapsed >= run:
            return Observation("completed")
        queued_until = run * QUEUED_FRACTION
        if elapsed < queued_until:
            return Observation("queued")
        progress = min(99, max(0, int((elapsed - queued_until) * 100 / (run - queued_until))))
        if peek:
            return Observation("processing", progress=progress)
        if job.flapping:
            job.flap_reads += 1
            if job.flap_reads % 2 == 0:
                return Observation("queued")
        if job.backwards and job.last_progress:
            progress = job.last_progress // 2
            job.backwards = False
        job.last_progress = progress
        return Observation("processing", progress=progress)

    def job_count(self) -> int:
        with self._lock:
            return len(self._jobs)

    def closed_port(self) -> int:
        """A loopback port bound but never listening: connecting to it is refused, for as long as we live."""
        with self._lock:
            if self._closed_socket is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                self._closed_socket = sock
            port: int = self._closed_socket.getsockname()[1]
            return port

    # ----------------------------------------------------------------------------------------- media

    def media(self, job: Job, ext: Literal["mp4", "png"]) -> bytes:
        """A finished job's file (blocking: call from a worker thread). ``media`` keeps what it rendered, by
        prompt and duration; the lock makes two downloads of one new video encode it once, not twice at once."""
        with self._render_lock:
            if ext == "png":
                return media.render_png(job.prompt)
            return media.render_mp4(job.prompt, min(float(job.duration), self.config.video_seconds_cap))

    # ---------------------------------------------------------------------------------------- faults

    def add_faults(self, *faults: Fault | Mapping[str, Any] | Iterable[Fault | Mapping[str, Any]]) -> None:
        """Arm faults (models, dicts, or lists of either). Traits with a ``task_id`` apply to that task now."""
        flat: list[Fault] = []
        for item in faults:
            if isinstance(item, Fault | Mapping):
                flat.append(item if isinstance(item, Fault) else Fault.model_validate(item))
            else:
                flat.extend(f if isinstance(f, Fault) else Fault.model_validate(f) for f in item)
        with self._lock:
            for fault in flat:
                if fault.kind in TASK_TRAITS and fault.task_id is not None:
                    job = self._jobs.get(fault.task_id)
                    if job is None:
                        raise ValueError(f"no task {fault.task_id!r} to apply fault {fault.kind!r} to")
                    self._apply_trait(job, fault)
                else:
                    self._armed.append(_Armed(fault, fault.times))

    def armed_faults(self) -> list[tuple[Fault, int]]:
        """Faults still armed, with how many more requests each applies to (-1: forever)."""
        with self._lock:
            return [(armed.fault, armed.remaining) for armed in self._armed]

    def clear_faults(self) -> None:
        with self._lock:
            self._armed = []

    def take(
        self,
        kinds: Collection[str],
        path: str,
        task_id: str | None = None,
        *,
        when: Callable[[Fault], bool] | None = None,
        only_untargeted: bool = False,
    ) -> Fault | None:
        """Consume one use of the first armed fault of these kinds that matches this request."""
        with self._lock:
            for armed in self._armed:
                fault = armed.fault
                if (
                    fault.kind in kinds
                    and path in fault.paths
                    and (fault.task_id is None or (not only_untargeted and fault.task_id == task_id))
                    and (when is None or when(fault))
                ):
                    if armed.remaining > 0:
                        armed.remaining -= 1
                        if armed.remaining == 0:
                            self._armed.remove(armed)
                    return fault
            return None
