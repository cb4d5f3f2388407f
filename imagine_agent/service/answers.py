"""What a quote and a paid job answer: the values every surface renders (``to_json`` is their one JSON shape)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..client import Downloads, Quote
from ..flows import PaymentInfo
from ..models import TaskStatus
from ..money import usdc_fields

__all__ = ["GenerationOutcome", "QuoteResult"]


@dataclass(frozen=True)
class QuoteResult:
    quote: Quote
    allowed: bool
    refusal: str | None
    remaining: int
    refusal_code: str | None = None  # the stable code (errors.REFUSAL_CODES) when not allowed
    sandbox: bool = False
    model_prices: dict[str, int] = field(default_factory=dict)  # each listed model's price for this request

    def to_json(self) -> dict[str, Any]:
        out = {
            **self.quote.to_json(),
            **usdc_fields(self.quote.amount),
            "allowed": self.allowed,
            "refusal": self.refusal,
            "refusalCode": self.refusal_code,
            **usdc_fields(self.remaining, "remaining"),
            **usdc_fields(self.remaining, "largestNextPayment"),
            "sandbox": self.sandbox,
        }
        if self.model_prices:
            out["modelPrices"] = {model: usdc_fields(amount) for model, amount in self.model_prices.items()}
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
