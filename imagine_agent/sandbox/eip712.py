"""The facilitator's own EIP-712 recovery: who signed a ``TransferWithAuthorization``, as USDC would see it.

Written from the EIP-712 specification and USDC's ``ECRecover`` rules, apart from ``imagine_agent.x402``'s
signing code on purpose (only the keccak primitive and the address checksum are shared): the sandbox is the
check of the client's EIP-712 definition, so a mistake there cannot verify itself. The struct is encoded
generically from the type list below (the client hashes its one struct by hand), and the signature is held to
what the USDC contract accepts: ``v`` of 27 or 28 and a low ``s`` (``ECRecover.recover`` reverts otherwise).
``tests/sandbox/test_sandbox_eip712.py`` checks it against eth-account's EIP-712 code. eth-account itself is
not imported here: it costs a second of CPU to import (eth-keyfile loads py_ecc's BLS tables), paid by every
process that runs the embedded sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..x402 import keccak256, to_checksum_address

__all__ = ["TRANSFER_WITH_AUTHORIZATION", "recover_signer", "typed_data_digest"]

# secp256k1's group order; USDC accepts s only in the lower half (EIP-2).
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Written out here on purpose, not imported from imagine_agent.x402 (TRANSFER_TYPES): a typo in the client's
# definition must not verify itself.
TRANSFER_WITH_AUTHORIZATION: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def _encode_value(kind: str, value: Any) -> bytes:
    """One member of ``encodeData``: atomic types as 32-byte words, dynamic ones as their keccak."""
    if kind == "string":
        return keccak256(str(value).encode())
    if kind == "address":
        raw = bytes.fromhex(str(value).removeprefix("0x"))
        if len(raw) != 20:
            raise ValueError(f"not a 20-byte address: {value!r}")
        return raw.rjust(32, b"\0")
    if kind == "uint256":
        return int(value).to_bytes(32, "big")  # OverflowError for negatives and values past 2**256
    if kind == "bytes32":
        raw = value if isinstance(value, bytes) else bytes.fromhex(str(value).removeprefix("0x"))
        if len(raw) != 32:
            raise ValueError("bytes32 must be 32 bytes")
        return raw
    raise ValueError(f"unsupported EIP-712 type {kind!r}")


def _hash_struct(name: str, types: Mapping[str, list[dict[str, str]]], data: Mapping[str, Any]) -> bytes:
    fields = types[name]
    members = ",".join(field["type"] + " " + field["name"] for field in fields)
    encoded_type = f"{name}({members})".encode()
    return keccak256(keccak256(encoded_type) + b"".join(_encode_value(f["type"], data[f["name"]]) for f in fields))


def typed_data_digest(typed: Mapping[str, Any]) -> bytes:
    """``keccak256("\\x19\\x01" ‖ domainSeparator ‖ hashStruct(message))`` of flat typed data."""
    types = typed["types"]
    return keccak256(
        b"\x19\x01"
        + _hash_struct("EIP712Domain", types, typed["domain"])
        + _hash_struct(typed["primaryType"], types, typed["message"])
    )


def recover_signer(typed: Mapping[str, Any], signature: bytes) -> str | None:
    """The (checksummed) address that signed ``typed``, or None for anything USDC would not accept as a signature."""
    import coincurve

    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    if not (0 < r < _N and 0 < s <= _N // 2):
        return None
    try:
        digest = typed_data_digest(typed)
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
    except (ValueError, OverflowError, KeyError, TypeError):
        return None
    return to_checksum_address(keccak256(public.format(compressed=False)[1:])[-20:].hex())
