"""The spec's exact 402 body (a copy of shared/spec/payment-required.json, checked equal when present)."""

from pathlib import Path

SPEC_402 = (Path(__file__).parent / "payment-required.json").read_text()
