"""The operator's policy, decided once (money-safety rules 5 and 6): every surface asks here and renders the answer.

For one request: is a person needed (a price over the approval threshold, a coin under ``ask``), may it coin
(the autoClank policy ``never | ask | agent | always`` and who is asking: an agent's wish or a person's own
flag), and what price the payment is bound to (what was quoted or shown). Pure functions over values: no I/O,
no wallet, no ledger, so the CLI, chat, the LangChain tools, MCP, the plugin and the console cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigurationError
from ..money import format_usdc

__all__ = ["Asker", "CoinDecision", "PersonDecision", "decide_coin", "person_needed", "price_bound"]

Asker = Literal["agent", "person"]
"""Who wants the coin: a model or bot (``agent``), or a person's own flag at a terminal (``person``)."""

_POLICIES = ("never", "ask", "agent", "always")


@dataclass(frozen=True)
class CoinDecision:
    """Whether autoClank is sent, and whether a person must approve it first (rule 6)."""

    send: bool
    needs_person: bool = False
    note: str | None = None  # what the narration says about the coin (None: nothing to say)
    refusal: str | None = None  # set: nothing may be paid for this call as asked

    @property
    def question(self) -> str | None:
        """Why a person is asked, when one is."""
        return "a coin under the operator's autoClank=ask policy" if self.needs_person else None


def decide_coin(
    policy: str,
    requested: bool,
    *,
    asker: Asker = "agent",
    person_approved: bool = False,
    assume_approved: bool = False,
) -> CoinDecision:
    """The operator's autoClank policy applied to one request.

    An agent's wish: ``never`` and ``always`` override it, ``agent`` follows it, ``ask`` sends it only with a
    person's yes (``person_approved``; ``assume_approved`` prices the call before the person is asked).
    A person's own flag (``--auto-clank`` at a terminal) is the person's choice under ``never``, ``agent`` and
    ``always``; under ``ask`` it still needs that person's explicit confirmation.
    """
    if policy not in _POLICIES:
        raise ConfigurationError(f"unknown autoClank policy {policy!r}: set never, ask, agent or always")
    if asker == "person":
        if policy == "ask" and requested:
            return CoinDecision(True, needs_person=not person_approved)
        return CoinDecision(requested)
    if policy == "never":
        return CoinDecision(False, note="not sent: the operator's autoClank policy is 'never'" if requested else None)
    if policy == "always":
        return CoinDecision(True, note=None if requested else "sent: the operator's autoClank policy is 'always'")
    if policy == "agent" or not requested:
        return CoinDecision(requested)
    if person_approved or assume_approved:  # assumed: priced before the person is asked, who still must be
        return CoinDecision(
            True, needs_person=not person_approved, note="sent: approved by a human under the operator's 'ask' policy"
        )
    return CoinDecision(
        False,
        needs_person=True,
        refusal=(
            "autoClank under the operator's 'ask' policy needs a human's approval, and none was given for this call. "
            "Nothing was paid. Call again with auto_clank=false to make the video without a coin, or tell the user a "
            "person must approve the coin."
        ),
    )


@dataclass(frozen=True)
class PersonDecision:
    """Whether a person must approve this payment, and why (the reasons shown to that person)."""

    reasons: tuple[str, ...] = ()

    @property
    def needed(self) -> bool:
        return bool(self.reasons)

    @property
    def over_threshold(self) -> bool:
        return any("approval threshold" in reason for reason in self.reasons)


def person_needed(
    amount: int | None, threshold: int | None, *, coin: CoinDecision | None = None, payer: str = "the paying wallet"
) -> PersonDecision:
    """Rule 5: a price over the operator's approval threshold, or a coin under ``ask``, waits for a person."""
    reasons: list[str] = []
    if coin is not None and coin.needs_person:
        reasons.append(
            f"it deploys a coin (autoClank), and the paying wallet {payer} becomes its creator; the "
            "operator's policy is 'ask'"
        )
    if threshold is not None and amount is not None and amount > threshold:
        reasons.append(f"its price {format_usdc(amount)} is over the approval threshold of {format_usdc(threshold)}")
    return PersonDecision(tuple(reasons))


def price_bound(shown: int | None, quoted: int | None) -> int | None:
    """The most a payment may cost (rule 8's price binding): the price shown to whoever decided (a person's
    approval, a caller's ``max_amount``), else the price quoted for the same request in this run; None: neither."""
    return shown if shown is not None else quoted
