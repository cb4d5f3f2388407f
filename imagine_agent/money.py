"""USDC amounts: integers of atomic units (6 decimals) everywhere, ``Decimal`` only at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["USDC_DECIMALS", "format_usdc", "parse_usdc", "usdc_decimal", "usdc_fields", "usdc_text"]

USDC_DECIMALS = 6
_UNIT = Decimal(10) ** USDC_DECIMALS


def parse_usdc(value: str | int | Decimal) -> int:
    """'1.5' -> 1500000. Refuses negatives, NaN, infinities and more than 6 decimals (never rounds money)."""
    if isinstance(value, bool):
        raise ValueError("a USDC amount must be a number, not a boolean")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a USDC amount (write it like 1.50)") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{value!r} is not a non-negative, finite USDC amount")
    atomic = amount * _UNIT
    if atomic != atomic.to_integral_value():
        raise ValueError(f"{value!r} has more than {USDC_DECIMALS} decimals; USDC cannot express it")
    return int(atomic)


def format_usdc(atomic: int, *, unit: bool = True) -> str:
    """1500000 -> '1.500000 USDC'."""
    text = f"{Decimal(atomic) / _UNIT:.{USDC_DECIMALS}f}"
    return f"{text} USDC" if unit else text


def usdc_decimal(atomic: int) -> str:
    """1500000 -> '1.5', 250000 -> '0.25', 0 -> '0': decimal USDC without trailing zeros, never exponent form."""
    text = format_usdc(atomic, unit=False).rstrip("0").rstrip(".")
    return text or "0"


def usdc_fields(atomic: int | None, name: str = "amount") -> dict[str, str | None]:
    """The one JSON shape of an amount everywhere: ``{"amount": "250000", "amountUsdc": "0.25"}``.

    Atomic units as a string (exact for scripts), decimal USDC beside it (for people and LLMs); ``None``
    (no cap) stays ``None`` in both. The CLI, the service's ``to_json``, the tools, MCP and the plugin use it.
    """
    if atomic is None:
        return {name: None, f"{name}Usdc": None}
    return {name: str(atomic), f"{name}Usdc": usdc_decimal(atomic)}


def usdc_text(body: object, name: str = "amount", default: str = "none") -> str:
    """The decimal text of a ``usdc_fields`` amount in a JSON object: ``{"amount": "250000"}`` -> '0.250000 USDC'."""
    value = body.get(name) if isinstance(body, dict) else None
    try:
        return format_usdc(int(str(value))) if value is not None else default
    except ValueError:
        return default
