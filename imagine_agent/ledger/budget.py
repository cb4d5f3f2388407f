"""The budget arithmetic: the windows, the cap a payment would break, the warning marks it crosses.

Pure functions over the usage the engine sums inside its transaction (``sql.py``), so both engines refuse alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BudgetExceededError
from ..money import format_usdc
from .records import Caps

DAY = 86_400.0  # the "daily" cap is a rolling 24 h window
MINUTE = 60.0

WARNING_LEVELS = (80, 95)  # percent of a window: a payment crossing one records a warning event


@dataclass(frozen=True)
class _Usage:
    spent: int
    reserved: int
    unknown: int
    daily: int
    total: int
    session: int
    last_minute: int


def _cutoff(now: float, chain_decides: bool) -> float:
    """Before which ``validBefore`` a rejected payment is freed by the clock: ``now``, or never (-1) when an
    RPC of the right chain decides (money-safety rule 9): then only reconcile, by the chain, releases it."""
    return -1.0 if chain_decides else now


def _refusal(amount: int, caps: Caps, usage: _Usage, *, sandbox: bool = False) -> BudgetExceededError | None:
    """The first cap ``amount`` would break, as an error that says what to do; ``None`` if all allow it."""
    window = "sandbox " if sandbox else ""
    if amount > caps.per_call:
        return BudgetExceededError(
            f"{format_usdc(amount)} would exceed the per-call cap of {format_usdc(caps.per_call)}. "
            "Nothing was signed. Raise IMAGINE_MAX_PER_CALL if you mean to pay it.",
            code="per_call_cap",
        )
    windows = (
        ("daily", caps.daily, usage.daily, "Raise IMAGINE_DAILY_CAP or wait."),
        ("total", caps.total, usage.total, "Raise IMAGINE_TOTAL_CAP."),
        ("session", caps.session, usage.session, "Raise IMAGINE_SESSION_CAP or start a new session."),
    )
    for name, cap, used, advice in windows:
        if cap is not None and amount + used > cap:
            return BudgetExceededError(
                f"{format_usdc(amount)} would exceed the {window}{name} cap of {format_usdc(cap)} "
                f"({format_usdc(used, unit=False)} used, {format_usdc(max(cap - used, 0), unit=False)} left). "
                f"Nothing was signed. {advice}",
                code=f"{name}_cap",
            )
    if caps.rate_per_minute is not None and usage.last_minute >= caps.rate_per_minute:
        return BudgetExceededError(
            f"{usage.last_minute} payments in the last minute reach the rate limit of {caps.rate_per_minute} "
            "per minute. Nothing was signed. Wait a minute or raise IMAGINE_RATE_PER_MINUTE.",
            code="rate_limit",
        )
    return None


def _crossings(amount: int, caps: Caps, usage: _Usage, session_id: str | None) -> list[tuple[str, str]]:
    """The 80 % / 95 % marks of each window that this payment (``usage`` is before it) goes past."""
    windows = [("daily", caps.daily, usage.daily), ("total", caps.total, usage.total)]
    if session_id is not None:
        windows.append(("session", caps.session, usage.session))
    found = []
    for name, cap, used in windows:
        if not cap:
            continue
        for level in WARNING_LEVELS:
            mark = cap * level  # compare in hundredths: integers, no float rounding at the boundary
            if used * 100 < mark <= (used + amount) * 100:
                spent, left = format_usdc(used + amount), format_usdc(max(cap - used - amount, 0))
                found.append(
                    (
                        f"{name}_{level}",
                        f"the {name} budget is past {level} %: {spent} of {format_usdc(cap)} used, {left} left",
                    )
                )
    return found


def _remaining(cap: int | None, used: int) -> int | None:
    return None if cap is None else max(cap - used, 0)
