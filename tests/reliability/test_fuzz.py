"""Hypothesis on every parser of untrusted input (targets in ``fuzz.py``), plus the inputs that once broke them.

Each input ends in a value or a clear error, never an unhandled exception, never a payment for what the
policy refuses. Examples per target: ``profile.fuzz_examples`` (short 150, long 2000), ten times as many
under ``HYPOTHESIS_PROFILE=dev`` (random; the default ``ci`` profile is derandomized), after the inputs
hypothesis once found (``Target.found``, run first every time).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from imagine_agent.errors import ProtocolError
from imagine_agent.flows import parse_status
from imagine_agent.ledger import PaymentState
from imagine_agent.x402 import decode_payment_response

from .fuzz import (
    FOUND_402_BODIES,
    TARGETS,
    Target,
    check_402_body,
    check_paid_answers,
    check_status_answers,
    fuzz_context,
    run_target,
)
from .profile import Profile

SPEC_DIR = Path(__file__).resolve().parents[1]
DEEP = b"[" * 300_000


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_fuzz_target(target: Target, profile: Profile, tmp_path: Path) -> None:
    with fuzz_context(tmp_path) as fuzz:
        tried = run_target(target, fuzz, profile.fuzz_examples)
    assert tried >= min(profile.fuzz_examples, 50)


# ------------------------------------------------------------------------- inputs that once broke things


def test_deeply_nested_json_cannot_crash_the_process() -> None:
    """eth-account's import (py_ecc) raises the recursion limit to 100000; json.loads on a deeply nested
    body then overflowed the C stack (a segfault: the process died mid-payment). Parsers now use
    pydantic-core's depth-capped parser. Run in a fresh interpreter so a crash cannot take pytest down."""
    code = f"""
import base64, sys, httpx
import eth_account  # raises sys.getrecursionlimit() to 100000
assert sys.getrecursionlimit() >= 100000
from imagine_agent.errors import ProtocolError
from imagine_agent.flows import parse_status
from imagine_agent.models import CreateRequest
from imagine_agent.x402 import decode_payment_response
deep = b"[" * {len(DEEP)}
assert parse_status(httpx.Response(202, content=deep)) is None
try:
    decode_payment_response(base64.b64encode(b"[" * 12000).decode())
except ProtocolError:
    pass
from pydantic import ValidationError
try:
    CreateRequest.model_validate({{"prompt": "p", "templateData": deep.decode()}})
except ValidationError:
    pass
print("survived")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=SPEC_DIR.parent
    )
    assert done.returncode == 0 and "survived" in done.stdout, (done.returncode, done.stderr[-2000:])


def test_deep_status_body_and_receipt_are_clear_errors() -> None:
    assert parse_status(httpx.Response(202, content=DEEP)) is None
    with pytest.raises(ProtocolError):
        decode_payment_response(base64.b64encode(b"[" * 12_000).decode())


def test_a_deep_receipt_after_settlement_still_records_the_task(tmp_path: Path) -> None:
    """The 202 settled the money: an unreadable receipt must not lose the taskId (it raised RecursionError)."""
    receipt = base64.b64encode(b"[" * 12_000).decode()
    with fuzz_context(tmp_path) as fuzz:
        check_paid_answers(fuzz, [(202, json.dumps({"taskId": "t-1"}), receipt)])
        (record,) = fuzz.ledger.payments()
        assert (record.state, record.task_id, record.transaction) == (PaymentState.PAID, "t-1", None)


def test_a_failed_settlement_402_is_unknown_not_rejected(tmp_path: Path) -> None:
    """x402's ``unexpected_settle_error`` may still land on chain: never release it as refused."""
    body = json.dumps(
        {**json.loads((SPEC_DIR / "payment-required.json").read_text()), "error": "unexpected_settle_error"}
    )
    with fuzz_context(tmp_path) as fuzz:
        check_paid_answers(fuzz, [(402, body, None), (402, body, None)])
        (record,) = fuzz.ledger.payments()
        assert record.state == PaymentState.UNKNOWN
        assert fuzz.ledger.totals(fuzz.wallet.policy.caps).unknown == record.amount


def test_a_402_naming_another_resource_is_paid_with_a_warning_never_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Hypothesis found it (issue 24 (a)): the check required the ``resource`` to match, the wallet pays on
    what the signature binds and logs a differing resource (DESIGN rule 1). The check follows the rule."""
    with fuzz_context(tmp_path) as fuzz, caplog.at_level("WARNING", logger="imagine_agent.wallet"):
        check_402_body(fuzz, FOUND_402_BODIES[0])
        assert fuzz.signer.signed == 1 and [p.amount for p in fuzz.ledger.payments()] == [1_000_000]
    assert "names resource 'https://evil.example/generation/create'" in caplog.text


def test_a_zero_price_is_refused_before_anything_is_reserved(tmp_path: Path) -> None:
    """A 402 asking for 0 passed the policy, then the ledger raised a bare ValueError (not an ImagineError)."""
    body = json.loads((SPEC_DIR / "payment-required.json").read_text())
    body["accepts"][0]["maxAmountRequired"] = "0"
    with fuzz_context(tmp_path) as fuzz:
        check_402_body(fuzz, json.dumps(body))
        assert fuzz.ledger.payments() == [] and fuzz.signer.signed == 0


@pytest.mark.parametrize("progress", ["NaN", "Infinity", "-Infinity", "null"])
def test_non_numeric_progress_never_moves_the_caller_backwards(progress: str, tmp_path: Path) -> None:
    answers: list[tuple[int, str | bytes, str | None] | None] = [
        (202, '{"status":"processing","progress":60}', None),
        (202, '{"status":"processing","progress":' + progress + "}", None),
        (202, '{"status":"processing","progress":30}', None),
        (202, '{"status":"queued"}', None),
    ]
    with fuzz_context(tmp_path) as fuzz:
        check_status_answers(fuzz, answers)
