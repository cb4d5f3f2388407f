"""The spec's exact 402 body (a copy of the API spec's payment-required.json, kept in the repo)."""

from pathlib import Path

SPEC_402 = (Path(__file__).parent / "payment-required.json").read_text()
