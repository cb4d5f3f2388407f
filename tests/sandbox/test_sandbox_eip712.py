"""The sandbox's own EIP-712 recovery against eth-account's: the same signer for every authorization it accepts.

The sandbox verifies payments without eth-account (a second of import per process), so this is where its
recovery is held to an implementation we did not write: typed data signed by eth-account recovers to the
signing key, and for arbitrary signature bytes the sandbox either refuses or names eth-account's signer. It
refuses more than eth-account in exactly two places, both USDC's ``ECRecover`` rules: ``v`` other than 27/28
and a high ``s``.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from imagine_agent.sandbox.eip712 import TRANSFER_WITH_AUTHORIZATION, recover_signer, typed_data_digest
from imagine_agent.x402 import NETWORKS, PrivateKeySigner, authorization_digest, to_checksum_address

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEYS = [bytes([i + 1]) * 32 for i in range(4)]  # fixed keys: eth-account derives each address once

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: to_checksum_address(raw.hex()))
uint256 = st.integers(min_value=0, max_value=2**256 - 1)


@st.composite
def authorizations(draw: st.DrawFn) -> dict[str, Any]:
    network = draw(st.sampled_from(sorted(NETWORKS.values(), key=lambda n: n.name)))
    return {
        "types": TRANSFER_WITH_AUTHORIZATION,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": draw(st.sampled_from([network.usdc_name, "USDC", "", "Ünïcödé Coin"])),
            "version": draw(st.sampled_from(["2", "1", ""])),
            "chainId": draw(st.sampled_from([network.chain_id, 1, 2**64])),
            "verifyingContract": draw(st.sampled_from([network.usdc, draw(addresses)])),
        },
        "message": {
            "from": draw(addresses),
            "to": draw(addresses),
            "value": draw(uint256),
            "validAfter": draw(uint256),
            "validBefore": draw(uint256),
            "nonce": draw(st.binary(min_size=32, max_size=32)),
        },
    }


def theirs(typed: dict[str, Any], signature: bytes) -> str | None:
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=signature))
    except Exception:
        return None


@given(authorizations(), st.sampled_from(KEYS))
def test_what_eth_account_signs_recovers_to_its_signer(typed: dict[str, Any], key: bytes) -> None:
    signed = Account.sign_message(encode_typed_data(full_message=typed), key)
    assert typed_data_digest(typed) == _hash_eip191_message(encode_typed_data(full_message=typed))
    assert recover_signer(typed, bytes(signed.signature)) == Account.from_key(key).address


@given(authorizations())
def test_the_digest_is_the_one_eth_account_and_the_client_sign(typed: dict[str, Any]) -> None:
    """Three implementations of one hash: eth-account's, the client's hand-written one, the sandbox's."""
    key = KEYS[0]
    ours = PrivateKeySigner(key).sign_digest(typed_data_digest(typed))
    as_the_client_has_it = {**typed, "message": {**typed["message"], "nonce": "0x" + typed["message"]["nonce"].hex()}}
    assert ours == PrivateKeySigner(key).sign_digest(authorization_digest(as_the_client_has_it))
    assert theirs(typed, ours) == Account.from_key(key).address


@given(authorizations(), st.binary(min_size=64, max_size=64), st.sampled_from([27, 28]) | st.integers(0, 255))
def test_any_signature_is_refused_or_names_eth_accounts_signer(typed: dict[str, Any], rs: bytes, v: int) -> None:
    signature = rs + bytes([v])
    ours, expected = recover_signer(typed, signature), theirs(typed, signature)
    if ours is not None:
        assert ours == expected
    elif expected is not None:  # refused where eth-account recovers: only USDC's stricter rules
        assert v not in (27, 28) or int.from_bytes(rs[32:], "big") > N // 2


@given(authorizations())
def test_a_high_s_twin_is_refused_though_eth_account_recovers_it(typed: dict[str, Any]) -> None:
    """``(r, N - s, v ^ 1)`` is the same signature to secp256k1, and USDC's ECRecover reverts on it."""
    signed = bytes(Account.sign_message(encode_typed_data(full_message=typed), KEYS[1]).signature)
    r, s, v = signed[:32], int.from_bytes(signed[32:64], "big"), signed[64]
    twin = r + (N - s).to_bytes(32, "big") + bytes([55 - v])
    assert theirs(typed, twin) == Account.from_key(KEYS[1]).address
    assert recover_signer(typed, twin) is None
    assert recover_signer(typed, signed[:64] + bytes([v - 27])) is None  # v of 0/1: not what USDC takes
    assert recover_signer(typed, signed[:64]) is None  # not 65 bytes
