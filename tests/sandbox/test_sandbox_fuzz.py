"""The create-body parser on untrusted input: any body is a 400 or a 402, never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagine_agent.sandbox import SandboxConfig, create_app
from tests.hypothesis_profiles import examples
from tests.sandbox.support import CREATE

APP = create_app(SandboxConfig())

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
template_fields = st.fixed_dictionaries(
    {},
    optional={
        "videoModel": st.sampled_from(["sora", "veo", ""]) | json_values,
        "duration": st.integers(-5, 100) | st.floats(allow_nan=True, allow_infinity=True) | json_values,
        "autoClank": st.booleans() | json_values,
        "autoEnhance": st.booleans() | json_values,
        "soraVideoId": st.from_regex(r"[A-Za-z0-9_.:-]{0,12}", fullmatch=True) | json_values,
        "image": st.sampled_from(
            ["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,!!", "file:///x"]
        )
        | json_values,
    },
)
templates = template_fields | template_fields.map(json.dumps) | json_values
create_bodies = st.fixed_dictionaries(
    {"prompt": st.text(max_size=60) | json_values}, optional={"templateData": templates, "extra": json_values}
)
plausible_templates = st.fixed_dictionaries(
    {},
    optional={
        "videoModel": st.sampled_from(["xai-grok-imagine", "sora-2", "sora-2-pro"]),
        "duration": st.integers(1, 60) | st.floats(1, 60),
        "autoClank": st.booleans(),
        "autoEnhance": st.booleans(),
        "image": st.just("https://example.com/a.png"),
    },
)
plausible_bodies = st.fixed_dictionaries(
    {"prompt": st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=60)},
    optional={"templateData": plausible_templates | plausible_templates.map(json.dumps)},
)
bodies = plausible_bodies | create_bodies | json_values


async def _post(content: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(APP), base_url="http://fuzz") as client:
        return await client.post(CREATE, content=content, headers=headers)


def _status(content: bytes, headers: dict[str, str]) -> int:
    response = asyncio.run(_post(content, headers))
    if response.status_code == 402:
        assert response.json()["accepts"][0]["maxAmountRequired"].isdigit()
    else:
        assert response.status_code == 400, response.text
        assert isinstance(response.json()["error"], str)
    return response.status_code


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_any_json_body_is_400_or_402(body: Any) -> None:
    _status(json.dumps(body).encode(), {"content-type": "application/json"})


@settings(max_examples=examples(100), deadline=None)
@given(body=create_bodies, header=st.text(max_size=40) | st.sampled_from(["", "e30=", "bnVsbA=="]))
def test_any_body_with_a_junk_payment_header_is_400_or_402(body: Any, header: str) -> None:
    header = header.encode("ascii", "ignore").decode().strip() or "x"
    status = _status(json.dumps(body).encode(), {"content-type": "application/json", "x-payment": header})
    assert status in (400, 402)


@settings(max_examples=examples(100), deadline=None)
@given(content=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "", "text/plain"]))
def test_any_bytes_are_400_or_402(content: bytes, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    _status(content, headers)


@settings(max_examples=examples(60), deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["prompt", "templateData", "seed", "soraVideoId", "remixToken", "image", "other"]),
        st.text(max_size=30).map(lambda s: s.encode("utf-8", "ignore").decode("utf-8")),
        max_size=5,
    ),
    image=st.none() | st.binary(max_size=40) | st.just(b"\x89PNG\r\n\x1a\n" + bytes(10)),
)
def test_any_multipart_body_is_400_or_402(fields: dict[str, str], image: bytes | None) -> None:
    boundary = "fuzzboundary7d3e"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if image is not None:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.bin"\r\n\r\n'
        parts.append(head.encode() + image + b"\r\n")
    content = b"".join(parts) + f"--{boundary}--\r\n".encode()
    _status(content, {"content-type": f"multipart/form-data; boundary={boundary}"})


APP_V2 = create_app(SandboxConfig(x402="v2"))
v2_payments = st.fixed_dictionaries(
    {"x402Version": st.sampled_from([2, 1, "2"]) | json_values},
    optional={
        "payload": json_values,
        "accepted": json_values
        | st.fixed_dictionaries(
            {
                "scheme": st.sampled_from(["exact", "upto"]),
                "network": st.sampled_from(["eip155:8453", "base", "x"]),
                "amount": st.sampled_from(["1000000", "-1", "x"]),
                "asset": st.text(max_size=42),
                "payTo": st.text(max_size=42),
                "maxTimeoutSeconds": st.integers(-1, 100),
            }
        ),
        "resource": json_values,
        "extensions": json_values,
    },
)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payment=v2_payments | json_values, raw=st.booleans())
def test_any_payment_signature_is_400_402_or_409_and_never_settles(payment: Any, raw: bool) -> None:
    """A v2 sandbox: whatever PAYMENT-SIGNATURE holds, a clean refusal, and no money moves."""
    header = json.dumps(payment) if raw else base64.b64encode(json.dumps(payment).encode()).decode()

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(APP_V2), base_url="http://fuzz") as client:
            return await client.post(
                CREATE,
                json={"prompt": "x"},
                headers={"payment-signature": header.encode("ascii", "ignore").decode() or "x"},
            )

    response = asyncio.run(post())
    assert response.status_code in (400, 402, 409), response.text
    assert APP_V2.state.sandbox.settlements() == []
