"""The budget-capped wallet: policy, then reserve, then sign, then journal — in that order, always.

``Wallet.authorize`` is the only place in the package that produces an ``X-PAYMENT`` header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import (
    ApprovalDeniedError,
    AwaitingApprovalError,
    BudgetExceededError,
    PaymentAbortedError,
    PaymentError,
    PaymentInFlightError,
    PolicyViolationError,
    PriceChangedError,
    WalletFrozenError,
)
from ..ledger import PaymentState
from ..money import format_usdc
from ..origin import is_loopback, origin_of
from ..service.decisions import person_needed
from ..x402 import Signer, encode_payment_header, sign_payment
from .approval import _APPROVAL_CONTEXT, _PERSON, ApprovalRequest, Approver
from .policy import PaymentPolicy

if TYPE_CHECKING:
    from ..ledger import AuditEvent, BudgetTotals, Ledger, PaymentRecord
    from ..models import PaymentPayload, PaymentRequired, PaymentRequirements, SettlementResponse

__all__ = ["Authorization", "Wallet", "collect_warnings"]

log = logging.getLogger(__name__)


_WARNINGS: ContextVar[list[str] | None] = ContextVar("imagine_agent_budget_warnings", default=None)


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect the budget warnings (80 % / 95 % of a window) of the payments authorized inside."""
    found: list[str] = []
    token = _WARNINGS.set(found)
    try:
        yield found
    finally:
        _WARNINGS.reset(token)


_RECORDED_APPROVAL_TTL = 600.0  # a person's yes is consumed by the payment that asked for it, right away


@dataclass(frozen=True)
class Authorization:
    """A reserved, signed and journaled payment, ready to send."""

    payment_id: str
    header: str
    requirement: PaymentRequirements
    payment: PaymentPayload

    @property
    def valid_before(self) -> int:
        return int(self.payment.payload.authorization.valid_before)

    @property
    def nonce(self) -> str:
        return self.payment.payload.authorization.nonce

    def __repr__(self) -> str:  # the header is a bearer instrument: keep it out of logs
        return f"Authorization(payment_id={self.payment_id!r}, amount={self.requirement.amount}, nonce={self.nonce!r})"


@dataclass
class Wallet:
    """Signer + policy + ledger. Thread-safe as far as the ledger is; the ledger enforces caps atomically."""

    signer: Signer
    ledger: Ledger
    policy: PaymentPolicy
    approver: Approver | None = None
    session_id: str | None = None
    clock: Callable[[], float] = field(default=time.time)
    # Called with each budget warning event (a window past 80 % / 95 %): the plugin callback, the console.
    listeners: list[Callable[[AuditEvent], None]] = field(default_factory=list)
    # Another ledger whose kill switch also stops this wallet: the operator's, for the embedded sandbox.
    kill_switch: Ledger | None = None
    # A wallet keeping the sandbox's books: it pays only servers that (on loopback) identify as the sandbox,
    # and its budget is the sandbox windows.
    sandbox_only: bool = False
    # Optional pre-flight (an RPC is configured): (network, address) -> the address's USDC on that chain.
    balance_of: Callable[[str, str], int] | None = None
    # An RPC of the right chain is configured (money-safety rule 9): nothing possibly spent is freed by the
    # clock. ``reconcile`` asks the chain (e.g. ``books.reconcile_ledger``); it runs on its own before a
    # reservation that would otherwise be refused, so a payment the chain shows dead frees its amount.
    chain_decides: bool = False
    reconcile: Callable[[], object] | None = None
    # Approvals this wallet just recorded for a person's yes (consumed by the reservation that follows, or retired).
    _recorded: set[str] = field(default_factory=set, repr=False)

    @property
    def address(self) -> str:
        return self.signer.address

    def __repr__(self) -> str:
        return f"Wallet(address={self.address!r}, ledger={self.ledger!r})"

    def authorize(
        self,
        required: PaymentRequired,
        *,
        resource_url: str,
        request_hash: str,
        description: str = "",
        new: bool = False,
        max_amount: int | None = None,
        sandbox: bool = False,
    ) -> Authorization:
        """Check, approve, reserve, sign and journal one payment. Raises with nothing signed on any refusal.

        Every refusal is written to the ledger's audit with its code (a queued approval writes its own line).
        Never a second signature for a request hash that has a signed payment still reserved, unknown,
        pending or rejected-but-unexpired (``PaymentInFlightError``), unless ``new``: the ledger decides
        it atomically, so threads and processes sharing the ledger get one payment. ``max_amount`` is a
        price already quoted to a person or a model: a higher price now is refused, not paid.
        ``sandbox``: the server claimed to be the sandbox. Believed for loopback URLs only; then the payment
        is recorded as sandbox money and counts against the sandbox windows of the same caps.
        """
        sandbox = sandbox and is_loopback(resource_url)
        requirement: PaymentRequirements | None = None
        try:
            if self.sandbox_only and not sandbox:
                raise PolicyViolationError(
                    f"refused to pay: {origin_of(resource_url) or resource_url!r} does not identify itself as a "
                    "loopback sandbox, and this wallet keeps the sandbox's books only. Nothing was signed."
                )
            if self.ledger.is_frozen() or (self.kill_switch is not None and self.kill_switch.is_frozen()):
                raise WalletFrozenError("the kill switch is on: no payments. Run `imagine-agent budget --unfreeze`.")
            requirement = self.policy.choose(required, resource_url)
            if max_amount is not None and requirement.amount > max_amount:
                raise PriceChangedError(
                    f"the price rose from the {format_usdc(max_amount)} quoted to "
                    f"{format_usdc(requirement.amount)} before payment. Nothing was signed. Quote again and "
                    "confirm the new price to pay it."
                )
            self._check_balance(requirement)
            approval_id = self._approve(requirement, request_hash, description, sandbox=sandbox)
        except PaymentError as exc:
            if not isinstance(exc, AwaitingApprovalError):
                self._audit(exc, requirement, request_hash)
            raise
        try:
            record = self._reserve(
                requirement,
                request_hash,
                approval_id,
                exclusive=not new,
                origin=origin_of(resource_url),
                sandbox=sandbox,
            )
        except PaymentError as exc:
            self._audit(exc, requirement, request_hash)
            if approval_id is not None and approval_id in self._recorded:  # a person's yes for this call only
                self.ledger.expire_approval(approval_id, reason=f"not used: {exc.code}")
            raise
        finally:
            self._recorded.discard(approval_id or "")
        self._warn(record.id)
        try:
            payment = sign_payment(requirement, self.signer, now=int(self.clock()))
            header = encode_payment_header(payment)
            auth = payment.payload.authorization
            self.ledger.journal_authorization(
                record.id,
                nonce=auth.nonce,
                valid_before=int(auth.valid_before),
                header=header,
                exclusive=not new,
                chain_decides=self.chain_decides,
            )
        except BaseException as exc:
            # Not journaled, so never sent: releasing is provably safe, and atomic (a no-op once journaled).
            released = self.ledger.release_unsigned(record.id, reason=f"not sent: {type(exc).__name__}")
            if isinstance(exc, ValueError) and not released:
                current = self.ledger.get(record.id)
                if current.header is None:  # someone else released it while we signed: fail closed
                    raise PaymentAbortedError(
                        f"payment {record.id} was {current.state.value} by another process while it was being "
                        f"signed ({current.reason or 'no reason given'}). The header was never sent; nothing "
                        "was paid. Run the request again."
                    ) from None
            raise
        return Authorization(record.id, header, requirement, payment)

    def _approve(
        self, requirement: PaymentRequirements, request_hash: str, description: str, *, sandbox: bool = False
    ) -> str | None:
        """Ask for approval when needed; the id of the operator's queued approval that covers it, if any.

        Over a cap there is nothing to approve: the caps are checked first, so nothing waits that could
        never be paid. A denial in the queue is final, whatever an interactive approver would say.
        """
        from ..ledger import ApprovalState

        context = _APPROVAL_CONTEXT.get()
        reasons = list(person_needed(requirement.amount, self.policy.approval_threshold).reasons)
        if context is not None and context.reason:
            reasons.append(context.reason)
        if not reasons:
            return None
        refusal = self.ledger.would_refuse(
            requirement.amount,
            self.policy.caps,
            session_id=self.session_id,
            now=self.clock(),
            sandbox=sandbox,
            chain_decides=self.chain_decides,
        )
        if refusal is not None and self.reconcile_now():
            refusal = self.ledger.would_refuse(
                requirement.amount,
                self.policy.caps,
                session_id=self.session_id,
                now=self.clock(),
                sandbox=sandbox,
                chain_decides=self.chain_decides,
            )
        if refusal is not None:
            raise refusal

        def granted() -> str | None:
            found = self.ledger.find_approval(request_hash, now=self.clock())
            if found is not None and found.state is ApprovalState.DENIED:
                raise ApprovalDeniedError(
                    f"the operator denied this request (approval {found.id}"
                    f"{': ' + found.reason if found.reason else ''}); a denial is final. Nothing was signed."
                )
            if (
                found is not None
                and found.state is ApprovalState.APPROVED
                and requirement.amount <= found.amount
                and found.pay_to.lower() == requirement.pay_to.lower()
                and found.network == requirement.network
            ):
                return found.id
            return None

        if (approval_id := granted()) is not None:
            return approval_id
        ask = ApprovalRequest(
            requirement.amount,
            requirement.pay_to,
            requirement.network,
            requirement.resource,
            description,
            request_hash=request_hash,
            asset=requirement.asset,
            request_json=context.request_json if context else None,
            reasons=tuple(reasons),
        )
        person = _PERSON.get()
        if person is not None and person.covers(requirement, request_hash):
            return self._record(ask, person.approved_by or person.surface, person.surface)
        # What a person approved does not cover this payment (another price, payee, network or request):
        # it needs a new approval, from the wallet's approver (an interactive prompt or the queue).
        if self.approver is None or not self.approver(ask):
            if self.approver is not None and not getattr(self.approver, "records_itself", False):
                self._audit_denial(ask, str(getattr(self.approver, "surface", None) or "callback"))
            raise ApprovalDeniedError(f"{' and '.join(reasons)}, and it was not approved. Nothing was signed.")
        if getattr(self.approver, "records_itself", False):
            return granted()  # the queue was approved: that approval is used up by this payment
        surface = str(getattr(self.approver, "surface", None) or "callback")
        return self._record(ask, surface, surface)

    def _record(self, ask: ApprovalRequest, decided_by: str, surface: str) -> str:
        """Write a person's yes to the ledger (bound to the request, ceiling, payee, network); its id."""
        entry = self.ledger.record_approval(
            request_hash=ask.request_hash,
            amount=ask.amount,
            asset=ask.asset,
            network=ask.network,
            pay_to=ask.pay_to,
            resource=ask.resource,
            description=ask.description,
            decided_by=decided_by,
            surface=surface,
            ttl=_RECORDED_APPROVAL_TTL,
            request_json=ask.request_json,
            session_id=self.session_id,
            now=self.clock(),
        )
        self._recorded.add(entry.id)
        return entry.id

    def _audit_denial(self, ask: ApprovalRequest, surface: str) -> None:
        try:
            self.ledger.record_event(
                "approval",
                "approval_denied",
                f"{format_usdc(ask.amount)} for {ask.description or ask.resource} not approved by {surface}",
                amount=ask.amount,
                network=ask.network,
                pay_to=ask.pay_to,
                request_hash=ask.request_hash,
                session_id=self.session_id,
                source=surface[:100],
                now=self.clock(),
            )
        except Exception:  # the denial is what the caller must see
            log.warning("could not write a denial to the audit", exc_info=True)

    def _reserve(
        self,
        requirement: PaymentRequirements,
        request_hash: str,
        approval_id: str | None,
        *,
        exclusive: bool,
        origin: str = "",
        sandbox: bool = False,
    ) -> PaymentRecord:
        """Reserve; when the chain decides and the ledger refuses (a cap, or this request's open payment),
        reconcile by the chain once and try again: what the chain shows dead no longer counts."""
        try:
            return self._reserve_once(
                requirement, request_hash, approval_id, exclusive=exclusive, origin=origin, sandbox=sandbox
            )
        except (BudgetExceededError, PaymentInFlightError):
            if not self.reconcile_now():
                raise
        return self._reserve_once(
            requirement, request_hash, approval_id, exclusive=exclusive, origin=origin, sandbox=sandbox
        )

    def reconcile_now(self) -> bool:
        """Ask the chain about what is counted as possibly spent; True when a reconcile ran (rule 9)."""
        if not self.chain_decides or self.reconcile is None:
            return False
        try:
            self.reconcile()
        except Exception as exc:  # an RPC down proves nothing: the refusal stands
            log.warning("reconcile by the chain failed (%s); nothing was freed", type(exc).__name__)
            return False
        return True

    def _reserve_once(
        self,
        requirement: PaymentRequirements,
        request_hash: str,
        approval_id: str | None,
        *,
        exclusive: bool,
        origin: str = "",
        sandbox: bool = False,
    ) -> PaymentRecord:
        return self.ledger.reserve(
            request_hash=request_hash,
            amount=requirement.amount,
            asset=requirement.asset,
            network=requirement.network,
            pay_to=requirement.pay_to,
            payer=self.address,
            resource=requirement.resource,
            caps=self.policy.caps,
            session_id=self.session_id,
            now=self.clock(),
            approval_id=approval_id,
            exclusive=exclusive,
            origin=origin,
            sandbox=sandbox,
            chain_decides=self.chain_decides,
        )

    def _audit(self, refusal: PaymentError, requirement: PaymentRequirements | None, request_hash: str) -> None:
        """Write a refusal to the audit; a failing audit never hides the refusal itself."""
        try:
            self.ledger.record_event(
                "refusal",
                refusal.code,
                str(refusal),
                request_hash=request_hash,
                session_id=self.session_id,
                amount=requirement.amount if requirement is not None else None,
                network=requirement.network if requirement is not None else None,
                pay_to=requirement.pay_to if requirement is not None else None,
                now=self.clock(),
            )
        except Exception:  # the refusal is what the caller must see
            log.warning("could not write a refusal (%s) to the audit", refusal.code, exc_info=True)

    def _warn(self, payment_id: str) -> None:
        """Hand the budget warnings the reservation recorded to the listeners and the collecting caller."""
        try:
            events = self.ledger.events(payment_id=payment_id, kinds=["warning"])
        except Exception:  # a warning must never stop a payment already reserved
            log.warning("could not read the budget warnings of payment %s", payment_id, exc_info=True)
            return
        collected = _WARNINGS.get()
        for event in reversed(events):
            log.warning("budget warning: %s", event.message)
            if collected is not None:
                collected.append(event.message)
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # a broken listener must not stop the payment
                    log.warning("a budget warning listener failed", exc_info=True)

    def _check_balance(self, requirement: PaymentRequirements) -> None:
        """Refuse before approval, reserving or signing when the chain shows the wallet cannot cover the price."""
        if self.balance_of is None:
            return
        held = self.balance_of(requirement.network, self.address)
        if held < requirement.amount:
            raise PolicyViolationError(
                f"the wallet holds {format_usdc(held)}, the video costs {format_usdc(requirement.amount)}: "
                f"nothing was signed. Fund {self.address} with USDC on {requirement.network}.",
                code="insufficient_balance",
            )

    def unpaid_unknown(self, request_hash: str, resource_url: str, reason: str) -> None:
        """Record an unpaid create whose answer was lost (it may have been served from provider credits):
        0 USDC, unknown, with the reason, in the audit the operator reads."""
        self.ledger.record_event(
            "unknown",
            "unpaid_create_lost",
            f"0 USDC, unknown: the answer to an unpaid create at {origin_of(resource_url) or resource_url} was "
            f"lost ({reason}); a server serving it from provider credits may have started it. Not sent again.",
            request_hash=request_hash,
            session_id=self.session_id,
            amount=0,
            now=self.clock(),
        )

    def frozen_reason(self) -> str | None:
        """Why nothing may be sent right now (the kill switch), or None: checked right before every send."""
        if not (self.ledger.is_frozen() or (self.kill_switch is not None and self.kill_switch.is_frozen())):
            return None
        return "The wallet is frozen (kill switch): nothing is sent."

    def resume(self, record: PaymentRecord, requirement: PaymentRequirements) -> Authorization:
        """Rebuild the authorization of a journaled payment so the same header can be re-sent."""
        from ..x402 import decode_payment_header

        if record.header is None:
            raise ValueError("this payment was never signed")
        return Authorization(record.id, record.header, requirement, decode_payment_header(record.header))

    def settled(self, auth: Authorization, *, task_id: str | None, receipt: SettlementResponse | None) -> None:
        tx = receipt.transaction if receipt is not None and receipt.success and receipt.transaction else None
        self._mark(auth, lambda: self.ledger.mark_paid(auth.payment_id, task_id=task_id, transaction=tx))

    def rejected(self, auth: Authorization, reason: str) -> PaymentRecord | None:
        """The server refused it: held until validBefore passes, then released by the ledger.

        Returns the record instead when another caller sending the same header already got it paid.
        """
        return self._mark(auth, lambda: self.ledger.mark_rejected(auth.payment_id, reason=reason))

    def pending(self, auth: Authorization, *, transaction: str, reason: str) -> PaymentRecord | None:
        """The server took it and named its on-chain ``transaction``, not confirmed yet: spent until reconciled."""
        return self._mark(
            auth, lambda: self.ledger.mark_pending(auth.payment_id, transaction=transaction, reason=reason)
        )

    def unknown(self, auth: Authorization, reason: str) -> PaymentRecord | None:
        """Counted as spent until reconciled; returns the record if a peer already got it paid."""
        return self._mark(auth, lambda: self.ledger.mark_unknown(auth.payment_id, reason=reason))

    def _mark(self, auth: Authorization, mark: Callable[[], None]) -> PaymentRecord | None:
        """Record an outcome; another caller re-sending the same header (recovery, a second process) may
        have recorded one first: a payment already paid stays paid and is returned, any other state stays."""
        current = self.ledger.get(auth.payment_id)
        if current.state is PaymentState.PAID:
            return current
        try:
            mark()
        except ValueError:  # the state moved between the read and the write: keep what the other one wrote
            current = self.ledger.get(auth.payment_id)
            if current.state is PaymentState.PAID:
                return current
            if current.state is PaymentState.RESERVED:
                raise
        return None

    def budget(self, *, sandbox: bool | None = None) -> BudgetTotals:
        """The real windows, or the sandbox ones (``sandbox``; by default those of a sandbox-only wallet)."""
        sandbox = self.sandbox_only if sandbox is None else sandbox
        totals = self.ledger.totals(
            self.policy.caps,
            session_id=self.session_id,
            now=self.clock(),
            sandbox=sandbox,
            chain_decides=self.chain_decides,
        )
        if not totals.frozen and self.kill_switch is not None and self.kill_switch.is_frozen():
            totals = replace(totals, frozen=True)
        return totals

    def remaining(self, *, sandbox: bool | None = None) -> int:
        """Atomic units this wallet could still pay in one call, under every cap."""
        totals = self.budget(sandbox=sandbox)
        windows: Collection[int | None] = (
            self.policy.caps.per_call,
            totals.remaining_daily,
            totals.remaining_total,
            totals.remaining_session,
        )
        return max(0, min(w for w in windows if w is not None))
