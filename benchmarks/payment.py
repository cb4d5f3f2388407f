"""1. Payment overhead: build and sign one ``X-PAYMENT``, ours vs the x402 SDK; and import cost.

Ours: ``encode_payment_header(sign_payment(requirement, PrivateKeySigner))`` — the whole header.
Theirs: ``ExactEvmSchemeV1(account).create_payment_payload(PaymentRequirementsV1)`` — the signed
payload only (not even encoded), so the comparison favours the SDK. Same key, same requirement (the
spec's 402); both signatures must recover, with eth-account, to the key's address.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .common import REPO, Row, interleaved, log, median, per_call, python, ratio_row, sized, skipped, time_commands

SECTION = "1. payment"
KEY = "0x" + "11" * 32
SPEC_402 = REPO / "tests" / "payment-required.json"
SDK_MISSING = "the x402 SDK is not installed: pip install -e '.[bench]'"


def sdk_installed() -> bool:
    try:
        import x402.mechanisms.evm.exact.v1.client  # noqa: F401
    except ImportError:
        return False
    return True


def _recover(accept: dict[str, Any], authorization: dict[str, Any], signature: str) -> str:
    """The signer of an authorization, by eth-account's own EIP-712 code (independent of ours and theirs)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from imagine_agent.sandbox.eip712 import TRANSFER_WITH_AUTHORIZATION  # written apart from the client's

    typed = {
        "types": TRANSFER_WITH_AUTHORIZATION,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": accept["extra"]["name"],
            "version": accept["extra"]["version"],
            "chainId": 8453,
            "verifyingContract": accept["asset"],
        },
        "message": {
            "from": authorization["from"],
            "to": authorization["to"],
            "value": int(authorization["value"]),
            "validAfter": int(authorization["validAfter"]),
            "validBefore": int(authorization["validBefore"]),
            "nonce": bytes.fromhex(authorization["nonce"][2:]),
        },
    }
    return str(Account.recover_message(encode_typed_data(full_message=typed), signature=signature))


def signing(quick: bool) -> list[Row]:
    import base64

    from imagine_agent.x402 import PrivateKeySigner, encode_payment_header, parse_payment_required, sign_payment

    body = json.loads(SPEC_402.read_text())
    accept = body["accepts"][0]
    requirement = parse_payment_required(body).accepts[0]
    signer = PrivateKeySigner(KEY)

    def ours() -> str:
        return encode_payment_header(sign_payment(requirement, signer, now=int(time.time())))

    header = json.loads(base64.b64decode(ours()))
    ours_ok = _recover(accept, header["payload"]["authorization"], header["payload"]["signature"]) == signer.address
    if not sdk_installed():
        rounds, number = sized(quick, (15, 500), (5, 300), (1, 5))
        alone = median([per_call(ours, number) for _ in range(rounds)])
        return [
            Row(SECTION, "sign one X-PAYMENT (ours alone)", alone * 1e6, "us", note=f"recovers: {ours_ok}"),
            skipped(SECTION, "sign one X-PAYMENT vs x402 SDK", SDK_MISSING),
        ]

    from eth_account import Account
    from x402.mechanisms.evm.exact.v1.client import ExactEvmSchemeV1
    from x402.schemas.v1 import PaymentRequirementsV1

    account = Account.from_key(KEY)
    scheme = ExactEvmSchemeV1(account)
    sdk_requirement = PaymentRequirementsV1.model_validate(accept)

    def theirs() -> dict[str, Any]:
        result: dict[str, Any] = scheme.create_payment_payload(sdk_requirement)
        return result

    payload = theirs()
    theirs_ok = _recover(accept, payload["authorization"], payload["signature"]) == account.address
    same_address = signer.address == account.address
    rounds = sized(quick, 15, 5, 1)
    ours_s, theirs_s, ratio = interleaved(ours, theirs, rounds=rounds, number=300, number_theirs=60)
    verified = ours_ok and theirs_ok and same_address
    note = "both recover (eth-account) to the same address" if verified else "SIGNATURE CHECK FAILED"
    log(f"  signing: ours {ours_s * 1e6:.1f} us, SDK {theirs_s * 1e6:.1f} us, ratio {ratio:.3f}; {note}")
    row = ratio_row(
        SECTION,
        "sign one X-PAYMENT (build+sign+encode)",
        ours_s * 1e6,
        "us",
        "x402 SDK create_payment_payload",
        theirs_s * 1e6,
        0.2,
        ratio=ratio,
        note=note,
        extra={"rounds": rounds, "recovers": {"ours": ours_ok, "sdk": theirs_ok, "same_address": same_address}},
    )
    if not verified:
        row.met = False
    return [row]


def imports(quick: bool) -> list[Row]:
    ours = python(
        "import imagine_agent",
        "imagine_agent.ImagineClient, imagine_agent.Wallet",
        "imagine_agent.PrivateKeySigner.generate()",
    )
    commands = {"ours": ours, "bare": python("pass")}
    have_sdk = sdk_installed()
    if have_sdk:
        commands["sdk"] = python(
            "from eth_account import Account",
            "from x402.mechanisms.evm.exact.v1.client import ExactEvmSchemeV1",
            "ExactEvmSchemeV1(Account.create())",
        )
    times = time_commands(commands, rounds=sized(quick, 7, 5, 1))
    ours_s, bare_s = median(times["ours"]), median(times["bare"])
    name = "import to sign (ImagineClient+Wallet+key)"
    if not have_sdk:
        return [
            Row(SECTION, name, ours_s * 1e3, "ms", "python -c pass", bare_s * 1e3, ours_s / bare_s),
            skipped(SECTION, "import vs the SDK's signer", SDK_MISSING),
        ]
    sdk_s = median(times["sdk"])
    ratios = [a / b for a, b in zip(times["ours"], times["sdk"], strict=True)]
    log(f"  import: ours {ours_s * 1e3:.0f} ms, SDK signer {sdk_s * 1e3:.0f} ms, bare python {bare_s * 1e3:.0f} ms")
    return [
        ratio_row(
            SECTION,
            name,
            ours_s * 1e3,
            "ms",
            "SDK signer (eth-account + ExactEvmSchemeV1)",
            sdk_s * 1e3,
            0.5,
            ratio=median(ratios),
            note=f"whole process; bare python {bare_s * 1e3:.0f} ms",
        )
    ]


def run(quick: bool) -> list[Row]:
    return signing(quick) + imports(quick)
