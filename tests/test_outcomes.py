"""Rule 1 (issue 11): only a credible, named pre-settlement failure is a rejection; the rest is unknown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagine_agent.outcomes import CREDIBLE_REJECTIONS, Answer, Signed, classify

NOW = 1_800_000_000
PAYEE = "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"
OPEN = Signed(value=250_000, pay_to=PAYEE, valid_after=NOW - 600, valid_before=NOW + 60)
OFFER = ((250_000, PAYEE),)


def rejected_402(reason: object, offers: tuple[tuple[int, str], ...] = OFFER) -> Answer:
    return Answer(status=402, body={"x402Version": 1, "error": reason, "accepts": []}, offers=offers)


@pytest.mark.parametrize(
    "reason",
    [
        "invalid_exact_evm_payload_signature",
        "insufficient_funds",
        "invalid_network",
        "invalid_payload",
        "invalid_exact_evm_signature",
        "unsupported_scheme",
    ],
)
def test_a_named_verification_failure_is_a_rejection(reason: str) -> None:
    assert classify(rejected_402(reason), OPEN, NOW).kind == "rejected"


@pytest.mark.parametrize(
    "reason",
    [
        "unexpected_settle_error",
        "nonce_already_used",
        "quota_exceeded",
        "",
        "invalid_transaction_state",
        "settle_exact_svm_block_height_exceeded",
    ],
)
def test_settlement_errors_and_unknown_reasons_are_unknown(reason: str) -> None:
    assert classify(rejected_402(reason), OPEN, NOW).kind == "unknown"


@pytest.mark.parametrize("reason", [None, 42, ["invalid_payload"], {"code": "invalid_payload"}, True])
def test_a_non_string_or_missing_reason_is_unknown(reason: object) -> None:
    assert classify(rejected_402(reason), OPEN, NOW).kind == "unknown"
    assert classify(Answer(status=402, body=[reason]), OPEN, NOW).kind == "unknown"


def test_expired_is_believed_only_once_the_window_closed_by_our_clock() -> None:
    answer = rejected_402("invalid_exact_evm_payload_authorization_valid_before")
    assert classify(answer, OPEN, NOW).kind == "unknown"  # 60 s left: not credible
    assert classify(answer, OPEN, NOW + 55).kind == "rejected"  # inside the facilitators' 6 s margin
    assert classify(answer, OPEN, NOW + 61).kind == "rejected"


def test_not_yet_valid_is_believed_only_before_valid_after() -> None:
    answer = rejected_402("invalid_exact_evm_payload_authorization_valid_after")
    assert classify(answer, OPEN, NOW).kind == "unknown"
    assert classify(answer, OPEN, NOW - 601).kind == "rejected"


def test_wrong_amount_or_payee_is_believed_only_when_the_offer_differs_from_what_we_signed() -> None:
    amount = "invalid_exact_evm_payload_authorization_value"
    payee = "invalid_exact_evm_payload_recipient_mismatch"
    assert classify(rejected_402(amount), OPEN, NOW).kind == "unknown"
    assert classify(rejected_402(amount, ()), OPEN, NOW).kind == "unknown"
    raised = classify(rejected_402(amount, ((500_000, PAYEE),)), OPEN, NOW)
    assert raised.kind == "rejected" and "500000" in raised.reason
    assert classify(rejected_402(payee), OPEN, NOW).kind == "unknown"
    assert classify(rejected_402(payee, ((250_000, PAYEE.lower()),)), OPEN, NOW).kind == "unknown"
    assert classify(rejected_402(payee, ((250_000, "0x" + "ab" * 20),)), OPEN, NOW).kind == "rejected"


@pytest.mark.parametrize(
    "status", [100, 101, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 409, 410, 413, 422, 429]
)
def test_any_other_status_after_payment_is_unknown(status: int) -> None:
    verdict = classify(Answer(status=status, body={"error": "invalid_payload"}, task_id="t"), OPEN, NOW)
    assert verdict.kind == "unknown", verdict
    if 300 <= status < 400:
        assert "redirect" in verdict.reason


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_worth_resending_the_same_header(status: int) -> None:
    assert classify(Answer(status=status), OPEN, NOW).kind == "retry"


def test_an_unreadable_body_is_unknown_whatever_the_status() -> None:
    for status in (200, 202, 402):
        answer = Answer(status=status, body_error="more than 1048576 bytes (decompressed)", task_id="t")
        assert classify(answer, OPEN, NOW).kind == "unknown"
    assert classify(Answer(status=202, task_id="t"), OPEN, NOW).kind == "paid"
    assert classify(Answer(status=202), OPEN, NOW).kind == "retry"


def test_reasons_shown_are_inert() -> None:
    verdict = classify(rejected_402("\x1b[2Kinvalid\rapproved"), OPEN, NOW)
    assert verdict.kind == "unknown" and "\x1b" not in verdict.reason and "\r" not in verdict.reason


@given(
    status=st.integers(100, 599),
    reason=st.one_of(st.none(), st.integers(), st.text(max_size=40)),
    now=st.integers(NOW - 1000, NOW + 1000),
)
def test_only_a_402_with_a_vocabulary_reason_is_ever_a_rejection(status: int, reason: object, now: int) -> None:
    verdict = classify(Answer(status=status, body={"error": reason}, offers=((1, "0x" + "00" * 20),)), OPEN, now)
    if verdict.kind == "rejected":
        assert status == 402 and isinstance(reason, str) and reason.strip() in CREDIBLE_REJECTIONS
