"""Fuzz targets: every parser of untrusted input, with the property it must keep.

Each input ends in a value or a clear error (``ImagineError``; pydantic's ``ValidationError`` for
``Settings``; ``ValueError`` naming the file for sandbox fault files), never an unhandled exception,
and never a payment for anything the policy refuses. The paid flow is I/O-free, so the protocol
targets drive ``create_flow`` / ``paid_flow`` / ``wait_flow`` directly with made-up server answers:
no sleeping, thousands of examples a minute, the real wallet and SQLite ledger underneath.

``test_fuzz.py`` runs each target under pytest; ``python -m benchmarks.reliability`` runs the same
targets and reports how many inputs each one tried.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import logging
import os
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import eth_account  # noqa: F401  (now, not mid-run: its import raises the recursion limit to 100000)
import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from imagine_agent.client import ImagineClient
from imagine_agent.config import IMAGINE_PAY_TO, Settings
from imagine_agent.errors import (
    ImagineError,
    InvalidRequestError,
    PaymentRejectedError,
    PaymentStateUnknownError,
    ProtocolError,
)
from imagine_agent.flows import Call, Created, Flow, Sleep, Update, create_flow, wait_flow
from imagine_agent.ledger import Caps, Ledger, PaymentState, open_ledger
from imagine_agent.models import IMAGE_MIME_TYPES, CreateRequest, TaskStatus, check_image_host
from imagine_agent.polling import PollPolicy
from imagine_agent.sandbox import load_faults
from imagine_agent.sandbox.config import FAULT_KINDS, FAULT_PARAMS
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import NETWORKS, decode_payment_response, parse_payment_required
from tests.conftest import CountingSigner
from tests.isolation import clean_environ
from tests.spec import SPEC_402

from .audit import progress_regressed

__all__ = ["TARGETS", "Target", "fuzz_context", "run_target"]

URL = "https://eliza.getimagine.club/generation/create"
PER_CALL = 5_000_000
MAX_VALIDITY = 600
USDC = NETWORKS["base"].usdc
POLL = PollPolicy(first=1.0, floor=1.0, cap=15.0)

# ------------------------------------------------------------------------------------------ strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
# JSON nested deeper than any recursion limit: json.loads raises RecursionError, or (once eth-account
# raised the limit to 100000) overflows the C stack and kills the process.
deep_json = st.integers(1_100, 300_000).flatmap(
    lambda n: st.sampled_from(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n, "[" * n])
)
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


# --- 402 bodies

REQUIREMENT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "scheme": st.sampled_from(["exact", "upto", "", "EXACT"]),
    "network": st.sampled_from(["base", "base-sepolia", "ethereum", "", "BASE", "eip155:8453"]),
    "maxAmountRequired": st.sampled_from(["0", "1", "1000000", "5000000", "5000001", "9" * 40, "-1", "1e6", "1.5", ""])
    | st.integers(-10, 10**20),
    "payTo": st.sampled_from([IMAGINE_PAY_TO, IMAGINE_PAY_TO.lower(), "0x" + "66" * 20, "0x123", ""]),
    "asset": st.sampled_from([USDC, USDC.lower(), NETWORKS["base-sepolia"].usdc, "0x" + "11" * 20, "USDC"]),
    "resource": st.sampled_from(
        [URL, URL + "/", URL.replace("https://", "http://"), "https://evil.example/generation/create", "", "/x"]
    ),
    "maxTimeoutSeconds": st.integers(-5, 100_000),
    "extra": st.sampled_from(
        [{"name": "USD Coin", "version": "2"}, {"name": "USDC", "version": "2"}, {"name": "USD Coin"}, {}, None]
    ),
}


def _mutated_402(changes: dict[str, Any], more: list[dict[str, Any]], top: dict[str, Any]) -> str:
    body = json.loads(SPEC_402)
    body["accepts"][0].update(changes)
    body["accepts"].extend(more)
    body.update(top)
    return _dumps(body)


_changes = st.fixed_dictionaries({}, optional={k: v | json_values for k, v in REQUIREMENT_FIELDS.items()})
payment_required_bodies: st.SearchStrategy[str | bytes] = st.one_of(
    st.builds(
        _mutated_402,
        _changes,
        st.lists(_changes.map(lambda c: {**json.loads(SPEC_402)["accepts"][0], **c}), max_size=2),
        st.fixed_dictionaries({}, optional={"x402Version": st.integers(-1, 3) | json_values, "error": json_values}),
    ),
    json_values.map(_dumps),
    st.binary(max_size=200),
    deep_json,
)

# --- answers to the paid create (status, body, X-PAYMENT-RESPONSE) or a dropped connection

_receipt_ok = {"success": True, "transaction": "0x" + "ab" * 32, "network": "base", "payer": "0x" + "12" * 20}
receipts: st.SearchStrategy[str | None] = st.one_of(
    st.none(),
    st.just(_b64(json.dumps(_receipt_ok).encode())),
    ascii_text,
    json_values.map(lambda v: _b64(_dumps(v).encode())),
    st.fixed_dictionaries({}, optional={k: json_values for k in _receipt_ok}).map(
        lambda v: _b64(_dumps({**_receipt_ok, **v}).encode())
    ),
    deep_json.map(lambda s: _b64(s.encode())[:16_000]),
)


def _spec_402_with(error: str) -> str:
    return _dumps({**json.loads(SPEC_402), "error": error})


create_bodies: st.SearchStrategy[str | bytes] = st.one_of(
    st.builds(lambda t: _dumps({"taskId": t}), st.uuids().map(str) | json_values | ascii_text),
    st.sampled_from(["nonce_already_used", "unexpected_settle_error", "insufficient_funds", "invalid_payment"]).map(
        _spec_402_with
    ),
    json_values.map(_dumps),
    st.binary(max_size=100),
    deep_json,
)
Answer = tuple[int, str | bytes, str | None] | None  # None: the connection dropped
paid_answers: st.SearchStrategy[list[Answer]] = st.lists(
    st.none()
    | st.tuples(st.sampled_from([200, 201, 202, 400, 402, 404, 409, 422, 429, 500, 502, 503]), create_bodies, receipts),
    min_size=1,
    max_size=5,
)

# --- status bodies

_completed = json.loads(
    '{"status":"completed","result":{"generation":{"text":"t","image":"https://x.example/p.png",'
    '"video":{"url":"https://x.example/v.mp4"},"templateName":"video","agentId":"a"},"templateData":{"duration":8}}}'
)
status_fields = st.fixed_dictionaries(
    {"status": st.sampled_from(["queued", "processing", "completed", "failed", "not_found", "done", ""]) | json_values},
    optional={
        "progress": st.integers(-10, 200) | st.floats(allow_nan=True, allow_infinity=True) | json_values,
        "result": st.just(_completed["result"]) | json_values,
        "error": json_values,
    },
)
status_answers: st.SearchStrategy[list[tuple[int, str | bytes, str | None] | None]] = st.lists(
    st.none()
    | st.tuples(
        st.sampled_from([200, 202, 404, 429, 500, 502, 503]),
        st.one_of(status_fields.map(_dumps), json_values.map(_dumps), st.binary(max_size=60), deep_json),
        st.none()
        | st.sampled_from(["0", "2", "-1", "nan", "inf", "1e309", "Wed, 21 Oct 2015 07:28:00 GMT"])
        | ascii_text,
    ),
    max_size=12,
)

# --- create inputs (what a user, tool call or LLM passes in)

template_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "duration": st.integers(-5, 100) | st.floats(allow_nan=True, allow_infinity=True) | json_scalars,
        "video_model": st.sampled_from(["sora", "veo", ""]) | json_scalars,
        "auto_clank": st.booleans() | json_scalars,
        "auto_enhance": st.booleans() | json_scalars,
        "sora_video_id": st.from_regex(r"[A-Za-z0-9_.:-]{0,12}", fullmatch=True) | json_scalars,
        "image": st.sampled_from(["https://example.com/a.png", "http://127.0.0.1/a.png", "data:image/png;base64,!!"])
        | json_scalars,
        "seed": json_values,
    },
)
prompts = st.text(max_size=80) | json_scalars
wire_template_data = st.one_of(
    json_values, json_values.map(_dumps), template_kwargs, template_kwargs.map(_dumps), deep_json
)

_B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
image_urls = st.one_of(
    st.builds(
        lambda mime, enc, data: f"data:{mime}{enc},{data}",
        st.sampled_from([*IMAGE_MIME_TYPES, "IMAGE/PNG", "text/plain", "image/svg+xml", "", "image/png;x=1"])
        | ascii_text,
        st.sampled_from([";base64", "", ";BASE64", ";base64;x"]),
        st.binary(max_size=48).map(_b64) | st.text(st.sampled_from(_B64_CHARS + "!@ \n-_"), max_size=48),
    ),
    st.builds(lambda host, path: f"https://{host}/{path}", ascii_text, ascii_text),
    st.text(max_size=120),
)


def _ipv4_forms(value: int, form: int) -> str:
    """One address in the notations resolvers accept: dotted, integer, hex, octal, a.b and a.b.c."""
    a, b, c, d = value.to_bytes(4, "big")
    return [
        f"{a}.{b}.{c}.{d}",
        str(value),
        f"0x{value:x}",
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
        f"{a}.{value & 0xFFFFFF}",
        f"{a}.{b}.{value & 0xFFFF}",
        f"0x{a:x}.{b}.{c}.{d}",
    ][form]


image_hosts = st.one_of(
    st.builds(lambda v, f: (_ipv4_forms(v, f), ipaddress.IPv4Address(v)), st.integers(0, 2**32 - 1), st.integers(0, 6)),
    st.sampled_from([0, 0x7F000001, 0x0A000001, 0xC0A80101, 0xA9FEA9FE, 0xAC100001, 0x08080808]).flatmap(
        lambda v: st.integers(0, 6).map(lambda f: (_ipv4_forms(v, f), ipaddress.IPv4Address(v)))
    ),
    st.ip_addresses(v=6).map(lambda ip: (f"[{ip}]", ip)),
)

# --- configuration

SETTINGS_FIELDS = sorted(Settings.model_fields)
setting_values = st.sampled_from(
    [
        "",
        "0",
        "1",
        "-1",
        "1.5",
        "0.0000001",
        "1e400",
        "nan",
        "true",
        "no",
        "[]",
        "[1",
        "{}",
        "base,base-sepolia",
        '["base"]',
        "0x" + "11" * 32,
        "never",
        "sometimes",
        "/tmp",
        "postgresql://x",
    ]
) | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)
settings_env = st.dictionaries(st.sampled_from(SETTINGS_FIELDS), setting_values, max_size=6)

toml_values: st.SearchStrategy[str] = st.recursive(
    st.one_of(
        st.text(max_size=20).map(lambda s: json.dumps(s, ensure_ascii=True)),
        st.integers(-(10**20), 10**20).map(str),
        st.sampled_from(["1.5", "nan", "inf", "-inf", "true", "false", "0x" + "11" * 32, "1979-05-27", "0.0000001"]),
    ),
    lambda children: (
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.dictionaries(st.sampled_from(["a", "name", "b"]), children, max_size=2).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        )
    ),
    max_leaves=6,
)
toml_files: st.SearchStrategy[str] = st.one_of(
    st.dictionaries(st.sampled_from([*SETTINGS_FIELDS, "unknown_key"]), toml_values, max_size=6).map(
        lambda d: "".join(f"{k} = {v}\n" for k, v in d.items())
    ),
    st.text(max_size=120),
)

_fault_items = st.fixed_dictionaries(
    {"kind": st.sampled_from(FAULT_KINDS) | json_scalars},
    optional={
        "times": st.integers(-3, 3) | json_scalars,
        "match": st.sampled_from(["create", "status", "download", "nope"]) | json_scalars,
        "taskId": json_scalars,
        "params": st.dictionaries(
            st.sampled_from(sorted({p for spec in FAULT_PARAMS.values() for p in spec} | {"x"})),
            json_scalars | st.integers(-(10**400), 10**400),
            max_size=3,
        ),
    },
)
fault_files: st.SearchStrategy[tuple[str, str]] = st.one_of(
    st.lists(_fault_items, max_size=4).map(lambda xs: (".json", _dumps({"faults": xs}))),
    st.lists(_fault_items, max_size=4).map(lambda xs: (".json", _dumps(xs))),
    json_values.map(lambda v: (".json", _dumps(v))),
    deep_json.map(lambda s: (".json", s)),
    toml_files.map(lambda s: (".toml", s)),
    st.text(max_size=80).map(lambda s: (".toml", "[[faults]]\n" + s)),
)


# -------------------------------------------------------------------------------------------- driving


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def drive(
    flow: Flow[Any], answer: Callable[[httpx.Request], httpx.Response], clock: FakeClock | None = None
) -> tuple[Any, list[TaskStatus]]:
    """Run an I/O-free flow to its end: answer its requests, run its calls, skip its sleeps."""
    updates: list[TaskStatus] = []
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as stop:
            return stop.value, updates
        value, error = None, None
        try:
            if isinstance(step, httpx.Request):
                value = answer(step)
            elif isinstance(step, Call):
                value = step.fn()
            elif isinstance(step, Update):
                updates.append(step.status)
            elif isinstance(step, Sleep) and clock is not None:
                clock.now += step.seconds
        except Exception as exc:  # thrown back into the flow, as the real drivers do
            error = exc


def _response(
    request: httpx.Request, status: int, body: str | bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers=headers, request=request)


def _make(payment: str | None) -> httpx.Request:
    headers = {"content-type": "application/json"}
    if payment:
        headers["x-payment"] = payment
    return httpx.Request("POST", URL, headers=headers, content=b'{"prompt":"fuzz"}')


# ------------------------------------------------------------------------------------------- targets


@dataclass
class Fuzz:
    """What the targets share: a real wallet on a SQLite ledger, a scratch directory."""

    wallet: Wallet
    signer: CountingSigner
    ledger: Ledger
    workdir: Path


@contextlib.contextmanager
def fuzz_context(workdir: Path) -> Iterator[Fuzz]:
    workdir.mkdir(parents=True, exist_ok=True)
    signer = CountingSigner()
    ledger = open_ledger(workdir / "fuzz-ledger.sqlite3")
    policy = PaymentPolicy(
        caps=Caps(per_call=PER_CALL, daily=None, total=None, rate_per_minute=None), max_validity_seconds=MAX_VALIDITY
    )
    try:
        yield Fuzz(Wallet(signer, ledger, policy), signer, ledger, workdir)
    finally:
        ledger.close()


def _strictly_same(resource: str) -> bool:
    """The requested URL itself (scheme, host, port, path up to a trailing slash): no warning owed."""
    a, b = urlsplit(resource), urlsplit(URL)
    return (a.scheme, a.hostname, a.port, a.path.rstrip("/")) == (b.scheme, b.hostname, b.port, b.path)


def _assert_policy_valid(header: str, body: str | bytes, warnings: list[str]) -> None:
    """A header the wallet signed binds what the policy allows: USDC on Base (token, chain and signing domain
    recovered from the signature), to Imagine, an amount within the cap, a validity within the maximum, and
    an offered requirement saying exactly that. The ``resource`` is not signed and not a reason to refuse
    (DESIGN rule 1): when the requirement paid names another URL, a warning was logged; never a match."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from imagine_agent.x402 import decode_payment_header, transfer_typed_data

    payment = decode_payment_header(header)
    auth = payment.payload.authorization
    assert payment.network == "base" and payment.scheme == "exact", payment
    assert auth.to.lower() == IMAGINE_PAY_TO.lower(), auth.to
    assert 0 < int(auth.value) <= PER_CALL, auth.value
    assert int(auth.valid_before) - time.time() <= MAX_VALIDITY + 5, auth.valid_before
    usdc = parse_payment_required(json.dumps(json.loads(SPEC_402))).accepts[0]  # the real USDC domain
    typed = transfer_typed_data(usdc, auth)
    signer = Account.recover_message(encode_typed_data(full_message=typed), signature=payment.payload.signature)
    assert signer.lower() == auth.from_.lower(), "signed for another token, chain or domain"
    paid = [
        r
        for r in parse_payment_required(body).accepts
        if r.scheme == "exact"
        and r.network == "base"
        and r.amount == int(auth.value)
        and r.pay_to.lower() == IMAGINE_PAY_TO.lower()
        and r.asset.lower() == USDC.lower()
        and ((r.extra or {}).get("name"), (r.extra or {}).get("version")) == ("USD Coin", "2")
        and 0 < r.max_timeout_seconds <= MAX_VALIDITY
        and int(auth.valid_before) - time.time() <= r.max_timeout_seconds + 5
    ]
    assert paid, "signed what no offered requirement the policy allows says"
    named_elsewhere = [r.resource for r in paid if r.resource and not _strictly_same(r.resource)]
    if len(named_elsewhere) == len(paid):  # whichever of them was paid names another URL
        assert any(f"names resource {r!r}" in w for r in named_elsewhere for w in warnings), (
            f"paid a requirement for {named_elsewhere[0]!r} without a warning",
            warnings,
        )
    if not named_elsewhere:
        assert not any("names resource" in w for w in warnings), warnings


@contextlib.contextmanager
def _logged_warnings() -> Iterator[list[str]]:
    """The wallet's warnings while inside."""
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("imagine_agent.wallet")
    logger.addHandler(handler)
    try:
        yield found
    finally:
        logger.removeHandler(handler)


def check_402_body(fuzz: Fuzz, body: str | bytes) -> None:
    """Any 402 body: either refused with nothing signed, or one payment binding what the policy allows."""
    before = fuzz.signer.signed
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if "x-payment" not in request.headers:
            return _response(request, 402, body)
        sent.append(request.headers["x-payment"])
        return _response(request, 202, json.dumps({"taskId": str(uuid.uuid4())}))

    flow = create_flow(_make, fuzz.wallet, resource_url=URL, request_hash=uuid.uuid4().hex, description="fuzz")
    with _logged_warnings() as warnings:
        try:
            created, _ = drive(flow, answer)
        except ImagineError:
            assert fuzz.signer.signed == before and sent == [], "refused, yet something was signed or sent"
            return
    assert isinstance(created, Created) and created.payment is not None
    assert fuzz.signer.signed == before + 1 and len(set(sent)) == 1
    _assert_policy_valid(sent[0], body, warnings)


def check_paid_answers(fuzz: Fuzz, answers: list[Answer]) -> None:
    """Whatever the server answers to the paid create: one signature, and the ledger says what happened."""
    before = fuzz.signer.signed
    sent: list[str] = []
    used: list[Answer] = []
    pending = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        if "x-payment" not in request.headers:
            return _response(request, 402, SPEC_402)
        sent.append(request.headers["x-payment"])
        reply = pending.pop(0) if pending else None
        used.append(reply)
        if reply is None:
            raise httpx.RemoteProtocolError("dropped", request=request)
        status, body, receipt = reply
        return _response(request, status, body, {"x-payment-response": receipt} if receipt is not None else None)

    flow = create_flow(_make, fuzz.wallet, resource_url=URL, request_hash=uuid.uuid4().hex, description="fuzz")
    outcome: Any
    try:
        outcome, _ = drive(flow, answer)
    except ImagineError as exc:
        outcome = exc
    assert fuzz.signer.signed == before + 1 and len(set(sent)) == 1, "signed or sent more than one payment"
    record = fuzz.ledger.payments(limit=1)[0]
    if isinstance(outcome, Created):
        assert record.state == PaymentState.PAID and record.task_id == outcome.task_id, record
        assert used[-1] is not None and 200 <= used[-1][0] < 300
    elif isinstance(outcome, PaymentRejectedError):
        assert record.state == PaymentState.REJECTED, record
        assert all(u is not None and 400 <= u[0] < 500 for u in used), f"rejected after an ambiguous answer {used}"
    else:
        assert isinstance(outcome, PaymentStateUnknownError), repr(outcome)
        assert record.state == PaymentState.UNKNOWN, record


def check_receipt(fuzz: Fuzz, value: str | None) -> None:
    if value is None:
        return
    try:
        receipt = decode_payment_response(value)
    except ProtocolError:
        return
    assert isinstance(receipt.success, bool)


def check_status_answers(fuzz: Fuzz, answers: list[tuple[int, str | bytes, str | None] | None]) -> None:
    """Any run of status answers ends completed or in a clear error; the caller never sees progress fall."""
    pending = [*answers, (200, json.dumps(_completed), None)]
    clock = FakeClock()

    def answer(request: httpx.Request) -> httpx.Response:
        reply = pending.pop(0) if pending else (200, json.dumps(_completed), None)
        if reply is None:
            raise httpx.ReadTimeout("no answer", request=request)
        status, body, retry_after = reply
        return _response(request, status, body, {"retry-after": retry_after} if retry_after is not None else None)

    flow = wait_flow(
        lambda: httpx.Request("GET", "https://x.example/generation/t/status"),
        "t",
        policy=POLL,
        timeout=None,
        initial_delay=0,
        clock=clock,
    )
    try:
        result, updates = drive(flow, answer, clock)
    except ImagineError:
        return
    assert isinstance(result, TaskStatus) and result.status == "completed" and result.video_url
    assert not progress_regressed(updates), [(u.status, u.progress) for u in updates]


def check_create_input(fuzz: Fuzz, case: tuple[Any, dict[str, Any]]) -> None:
    """Bad create input is refused before anything is sent; good input is sent as strict JSON."""
    prompt, kwargs = case
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(402, content=SPEC_402)

    with ImagineClient(
        URL.removesuffix("/generation/create"), wallet=fuzz.wallet, transport=httpx.MockTransport(handler)
    ) as client:
        try:
            client.quote(prompt, **kwargs)
        except InvalidRequestError as exc:
            if "does not sell video model" in str(exc):  # known only from the live 402: one unpaid request
                assert len(sent) == 1 and not {"x-payment", "payment-signature"} & set(sent[0].headers)
                return
            assert sent == [], "invalid input was sent"
            return
    assert len(sent) == 1

    def strict(name: str) -> Any:
        raise AssertionError(f"the client sent {name}, which is not JSON")

    body = json.loads(sent[0].content, parse_constant=strict)
    assert isinstance(body["prompt"], str) and isinstance(json.loads(body.get("templateData") or "{}"), dict)


def check_wire_template_data(fuzz: Fuzz, template_data: Any) -> None:
    try:
        CreateRequest.model_validate({"prompt": "p", "templateData": template_data})
    except ValidationError:
        pass


def check_image_url(fuzz: Fuzz, url: str) -> None:
    try:
        request = CreateRequest.build("p", image=url)
    except InvalidRequestError:
        return
    assert request.template_data is not None and request.template_data.image == url
    if url.startswith("data:"):
        header, data = url.split(",", 1)
        assert header.removeprefix("data:").removesuffix(";base64").lower() in IMAGE_MIME_TYPES, header
        assert base64.b64decode(data, validate=True)


def check_image_host_case(fuzz: Fuzz, case: tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]) -> None:
    host, ip = case
    local = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified
    try:
        check_image_host(f"http://{host}/image.png", allow_private=False)
    except InvalidRequestError:
        assert local, f"{host} ({ip}) is public but was refused"
        return
    assert not local, f"{host} names {ip}, a local address, and was allowed"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, {**clean_environ(), **values}, clear=True):
        yield


def _check_settings_error(exc: ValueError, secret: str | None) -> None:
    from imagine_agent.config import settings_problem

    message = settings_problem(exc)
    assert message and "Traceback" not in message
    if secret and len(secret) >= 8:
        assert secret not in message, "the CLI message would show the private key"


def check_settings_env(fuzz: Fuzz, env: dict[str, str]) -> None:
    values = {f"IMAGINE_{k.upper()}": v for k, v in env.items()}
    empty = fuzz.workdir / "empty.toml"  # an existing, empty config: only the environment is fuzzed
    empty.touch()
    with _environment({**values, "IMAGINE_CONFIG": str(empty)}):
        try:
            Settings()
        except ValidationError as exc:
            _check_settings_error(exc, env.get("private_key"))


def check_settings_toml(fuzz: Fuzz, text: str) -> None:
    path = fuzz.workdir / "imagine.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with _environment({"IMAGINE_CONFIG": str(path)}):
        try:
            Settings()
        except (ValidationError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            _check_settings_error(exc, None)


def check_fault_file(fuzz: Fuzz, case: tuple[str, str]) -> None:
    suffix, text = case
    path = fuzz.workdir / f"faults{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        faults = load_faults(path)
    except ValueError as exc:
        assert str(path) in str(exc), str(exc)
        return
    assert all(f.kind in FAULT_KINDS for f in faults)


@dataclass(frozen=True)
class Target:
    """One parser of untrusted input, the inputs to try, and the property that must hold."""

    name: str
    what: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Fuzz, Any], None]
    found: tuple[Any, ...] = ()  # inputs hypothesis once found: run first, on every run (``@example``)


# ---- what hypothesis found (git log: "fixes it found"; issue 24). Each stays pinned next to its target.

FOUND_402_BODIES: tuple[str | bytes, ...] = (
    _mutated_402({"resource": "https://evil.example/generation/create"}, [], {}),  # paid with a warning (rule 1)
    _mutated_402({"resource": URL.replace("https://", "http://")}, [], {}),  # TLS terminated at a proxy
    _mutated_402({"resource": "/x"}, [], {}),
    _mutated_402({"maxAmountRequired": "0"}, [], {}),  # zero price: the ledger raised a bare ValueError
    _mutated_402({"maxAmountRequired": str(PER_CALL)}, [], {}),  # exactly the cap: paid
    _mutated_402({"maxTimeoutSeconds": MAX_VALIDITY}, [], {}),  # exactly the maximum validity: paid
    "[" * 12_000,  # nested deeper than the recursion limit eth-account raises: a segfault once
)
FOUND_PAID_ANSWERS: tuple[list[Answer], ...] = (
    [(402, _spec_402_with("unexpected_settle_error"), None)] * 2,  # may have settled: unknown, never rejected
    [(202, json.dumps({"taskId": "t-1"}), _b64(b"[" * 12_000))],  # a deep receipt must not lose the taskId
)
FOUND_STATUS_ANSWERS: tuple[list[tuple[int, str | bytes, str | None] | None], ...] = tuple(
    [
        (202, '{"status":"processing","progress":60}', None),
        (202, '{"status":"processing","progress":' + p + "}", None),
        (202, '{"status":"processing","progress":30}', None),
    ]
    for p in ("NaN", "Infinity", "-Infinity", "null")  # progress must never move the caller backwards
)
FOUND_CREATE_INPUT: tuple[tuple[Any, dict[str, Any]], ...] = (
    ("p", {"video_model": "veo"}),  # unlisted model: refused after the free 402, never after a payment
)
FOUND_IMAGE_HOSTS: tuple[tuple[str, ipaddress.IPv4Address], ...] = (
    ("2130706433", ipaddress.IPv4Address("127.0.0.1")),  # legacy IPv4 notations of loopback
    ("0x7f.1", ipaddress.IPv4Address("127.0.0.1")),
    ("0177.0.0.01", ipaddress.IPv4Address("127.0.0.1")),
)

TARGETS: list[Target] = [
    Target(
        "402-bodies", "402 bodies -> create flow + wallet", payment_required_bodies, check_402_body, FOUND_402_BODIES
    ),
    Target(
        "paid-answers",
        "answers to the paid create (status, body, receipt)",
        paid_answers,
        check_paid_answers,
        FOUND_PAID_ANSWERS,
    ),
    Target("receipts", "X-PAYMENT-RESPONSE receipts", receipts, check_receipt),
    Target(
        "status-bodies",
        "status answers (body, code, Retry-After) -> wait flow",
        status_answers,
        check_status_answers,
        FOUND_STATUS_ANSWERS,
    ),
    Target(
        "create-input",
        "prompt + templateData from callers -> client",
        st.tuples(prompts, template_kwargs),
        check_create_input,
        FOUND_CREATE_INPUT,
    ),
    Target(
        "template-data",
        "templateData on the wire (object or JSON string)",
        wire_template_data,
        check_wire_template_data,
    ),
    Target("image-urls", "image data URLs and URLs", image_urls, check_image_url),
    Target(
        "image-hosts",
        "image URL hosts (IPv4 in every notation, IPv6)",
        image_hosts,
        check_image_host_case,
        FOUND_IMAGE_HOSTS,
    ),
    Target("settings-env", "Settings from IMAGINE_* environment", settings_env, check_settings_env),
    Target("settings-toml", "Settings from imagine.toml (IMAGINE_CONFIG)", toml_files, check_settings_toml),
    Target("fault-files", "sandbox fault files (JSON, TOML)", fault_files, check_fault_file),
]


def run_target(target: Target, fuzz: Fuzz, examples: int) -> int:
    """Try what was once found, then ``examples`` inputs (ten times as many under the ``dev`` hypothesis
    profile; hypothesis may stop sooner when it runs out); returns how many it tried. Derandomized or random
    as the loaded hypothesis profile says (``tests/hypothesis_profiles.py``)."""
    from tests.hypothesis_profiles import examples as scaled

    tried = 0

    def run(value: Any) -> None:
        nonlocal tried
        tried += 1
        target.check(fuzz, value)

    test = given(target.strategy)(run)
    for value in target.found:
        test = example(value)(test)
    settings(max_examples=scaled(examples), deadline=None, database=None, suppress_health_check=list(HealthCheck))(
        test
    )()
    return tried
