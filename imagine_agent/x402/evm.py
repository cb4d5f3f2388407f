"""The ``exact`` scheme on EVM, shared by x402 v1 and v2: networks, EIP-712 and EIP-3009 signing, no I/O.

Both protocol versions sign the same EIP-3009 ``TransferWithAuthorization`` under USDC's EIP-712
domain; only the envelope around the signature differs (``v1.py``, ``v2.py``).

Signing hashes the one struct we sign by hand (keccak from pycryptodome, secp256k1 from coincurve):
eth-account costs 0.6 s to import and is only loaded for other typed data and for keystores.
Tests check every signature against eth-account's independent EIP-712 recovery.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from Crypto.Hash import keccak as _keccak

from ..errors import ConfigurationError
from .types import ExactAuthorization, ExactEvmPayload, PaymentRequirements

__all__ = [
    "NETWORKS",
    "TRANSFER_TYPES",
    "VALID_AFTER_SKEW",
    "Network",
    "PrivateKeySigner",
    "Signer",
    "authorization_digest",
    "build_authorization",
    "caip2_of",
    "keccak256",
    "network_from_caip2",
    "network_of",
    "sign_exact",
    "to_checksum_address",
    "transfer_typed_data",
]

VALID_AFTER_SKEW = 600  # seconds; reference clients back-date validAfter this much for clock skew


@dataclass(frozen=True)
class Network:
    """An EVM network x402 names, with USDC's contract and EIP-712 domain on it."""

    name: str
    chain_id: int
    usdc: str
    usdc_name: str
    usdc_version: str = "2"


NETWORKS: dict[str, Network] = {
    "base": Network("base", 8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USD Coin"),
    "base-sepolia": Network("base-sepolia", 84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC"),
}


def keccak256(data: bytes) -> bytes:
    return _keccak.new(data=data, digest_bits=256).digest()


def to_checksum_address(address: str) -> str:
    """EIP-55 mixed-case checksum form of a 20-byte hex address."""
    hex_addr = address.lower().removeprefix("0x")
    if len(hex_addr) != 40:
        raise ValueError(f"not a 20-byte address: {address!r}")
    return _checksum(hex_addr)


@functools.lru_cache(maxsize=1024)
def _checksum(hex_addr: str) -> str:
    # Cached: a wallet checksums the same few addresses (USDC, the payee) for every payment.
    digest = keccak256(hex_addr.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(hex_addr, digest[:40], strict=True))


# --------------------------------------------------------------------------------------- EIP-712

_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_TRANSFER_TYPE = (
    b"TransferWithAuthorization(address from,address to,uint256 value,"
    b"uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
_DOMAIN_TYPEHASH = keccak256(_DOMAIN_TYPE)
_TRANSFER_TYPEHASH = keccak256(_TRANSFER_TYPE)
_domain_cache: dict[tuple[str, str, int, str], bytes] = {}

TRANSFER_TYPES: dict[str, list[dict[str, str]]] = {
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


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr32(address: str) -> bytes:
    return bytes.fromhex(address[2:]).rjust(32, b"\0")


def _domain_separator(name: str, version: str, chain_id: int, contract: str) -> bytes:
    key = (name, version, chain_id, contract.lower())
    cached = _domain_cache.get(key)
    if cached is None:
        cached = keccak256(
            _DOMAIN_TYPEHASH
            + keccak256(name.encode())
            + keccak256(version.encode())
            + _u256(chain_id)
            + _addr32(contract)
        )
        _domain_cache[key] = cached
    return cached


def _transfer_digest(domain: Mapping[str, Any], message: Mapping[str, Any]) -> bytes:
    separator = _domain_separator(
        str(domain["name"]), str(domain["version"]), int(domain["chainId"]), str(domain["verifyingContract"])
    )
    return _struct_digest(
        separator,
        str(message["from"]),
        str(message["to"]),
        int(message["value"]),
        int(message["validAfter"]),
        int(message["validBefore"]),
        str(message["nonce"]),
    )


def _struct_digest(
    separator: bytes, from_: str, to: str, value: int, valid_after: int, valid_before: int, nonce: str
) -> bytes:
    struct = keccak256(
        _TRANSFER_TYPEHASH
        + _addr32(from_)
        + _addr32(to)
        + _u256(value)
        + _u256(valid_after)
        + _u256(valid_before)
        + bytes.fromhex(nonce[2:])
    )
    return keccak256(b"\x19\x01" + separator + struct)


def _requirement_domain(requirement: PaymentRequirements) -> tuple[str, str, int, str]:
    """USDC's EIP-712 domain for a requirement: name, version, chain id, checksummed contract."""
    extra = requirement.extra or {}
    return (
        str(extra.get("name", "")),
        str(extra.get("version", "")),
        network_of(requirement.network).chain_id,
        to_checksum_address(requirement.asset),
    )


def caip2_of(name: str) -> str:
    """The CAIP-2 id x402 v2 uses for one of our networks: ``base`` -> ``eip155:8453``."""
    return f"eip155:{network_of(name).chain_id}"


def network_from_caip2(caip2: str) -> str | None:
    """Our name of a CAIP-2 network (``eip155:84532`` -> ``base-sepolia``), or None when we do not know it."""
    for network in NETWORKS.values():
        if caip2 == f"eip155:{network.chain_id}":
            return network.name
    return None


def network_of(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ConfigurationError(f"unknown network {name!r}; supported: {', '.join(sorted(NETWORKS))}") from None


def transfer_typed_data(requirement: PaymentRequirements, authorization: ExactAuthorization) -> dict[str, Any]:
    """The full EIP-712 message (types, primaryType, domain, message) a wallet signs for this payment."""
    name, version, chain_id, contract = _requirement_domain(requirement)
    return {
        "types": TRANSFER_TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": name, "version": version, "chainId": chain_id, "verifyingContract": contract},
        "message": {
            "from": authorization.from_,
            "to": authorization.to,
            "value": int(authorization.value),
            "validAfter": int(authorization.valid_after),
            "validBefore": int(authorization.valid_before),
            "nonce": authorization.nonce,
        },
    }


def authorization_digest(typed_data: Mapping[str, Any]) -> bytes:
    """The 32-byte EIP-712 hash of a ``TransferWithAuthorization`` typed-data message."""
    if typed_data.get("primaryType") != "TransferWithAuthorization":
        raise ValueError("authorization_digest only hashes TransferWithAuthorization")
    return _transfer_digest(typed_data["domain"], typed_data["message"])


# ---------------------------------------------------------------------------------------- signers


@runtime_checkable
class Signer(Protocol):
    """Anything that can sign EIP-712 typed data for one address: a local key, a keystore, KMS, CDP.

    ``sign_typed_data`` receives the full typed-data dict and returns the 65-byte r||s||v signature.
    """

    @property
    def address(self) -> str: ...

    def sign_typed_data(self, typed_data: Mapping[str, Any]) -> bytes: ...


class PrivateKeySigner:
    """A secp256k1 key held in memory. Its repr, str and pickling never reveal the key."""

    __slots__ = ("_address", "_key")

    def __init__(self, private_key: str | bytes) -> None:
        import coincurve

        raw = private_key
        if isinstance(raw, str):
            text = raw.strip().removeprefix("0x")
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
        if len(raw) != 32:
            raise ConfigurationError("private key must be 32 bytes of hex (64 hex digits, optionally 0x-prefixed)")
        try:
            self._key = coincurve.PrivateKey(raw)
        except ValueError:
            raise ConfigurationError("private key is not a valid secp256k1 key") from None
        public = self._key.public_key.format(compressed=False)[1:]
        self._address = to_checksum_address("0x" + keccak256(public)[-20:].hex())

    @classmethod
    def generate(cls) -> PrivateKeySigner:
        return cls(secrets.token_bytes(32))

    @property
    def address(self) -> str:
        return self._address

    def sign_digest(self, digest: bytes) -> bytes:
        sig = self._key.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes([sig[64] + 27])

    def sign_typed_data(self, typed_data: Mapping[str, Any]) -> bytes:
        if typed_data.get("primaryType") == "TransferWithAuthorization":
            return self.sign_digest(authorization_digest(typed_data))
        from eth_account.messages import _hash_eip191_message, encode_typed_data

        return self.sign_digest(_hash_eip191_message(encode_typed_data(full_message=dict(typed_data))))

    def export_private_key(self) -> str:
        """The key as 0x hex: only for writing a keystore or a new wallet's one-time display."""
        return "0x" + self._key.secret.hex()

    def __repr__(self) -> str:
        return f"PrivateKeySigner(address={self._address!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("PrivateKeySigner cannot be pickled: keys stay in the process that loaded them")


# ---------------------------------------------------------------------------------------- signing


def build_authorization(
    requirement: PaymentRequirements, payer: str, *, now: int, nonce: bytes | None = None
) -> ExactAuthorization:
    """The EIP-3009 message for a requirement: ``value`` is the very amount the policy checked."""
    nonce = nonce if nonce is not None else secrets.token_bytes(32)
    return ExactAuthorization(
        from_=payer,
        to=requirement.pay_to,
        value=str(requirement.amount),
        valid_after=str(max(0, now - VALID_AFTER_SKEW)),
        valid_before=str(now + requirement.max_timeout_seconds),
        nonce="0x" + nonce.hex(),
    )


def sign_exact(
    requirement: PaymentRequirements, signer: Signer, *, now: int, nonce: bytes | None = None
) -> ExactEvmPayload:
    """Build and sign the authorization for one requirement; the envelope is the version's business."""
    authorization = build_authorization(requirement, signer.address, now=now, nonce=nonce)
    if type(signer) is PrivateKeySigner:
        # Our own key signs the digest its sign_typed_data would compute, without building the
        # typed-data dict only to read it back (the hot path: a quarter of the time of a payment).
        signature = signer.sign_digest(_payment_digest(requirement, authorization))
    else:
        signature = signer.sign_typed_data(transfer_typed_data(requirement, authorization))
    if len(signature) != 65:
        raise ConfigurationError("the signer returned a signature that is not 65 bytes")
    return ExactEvmPayload(signature="0x" + signature.hex(), authorization=authorization)


def _payment_digest(requirement: PaymentRequirements, authorization: ExactAuthorization) -> bytes:
    """``authorization_digest(transfer_typed_data(requirement, authorization))``, computed directly."""
    separator = _domain_separator(*_requirement_domain(requirement))
    return _struct_digest(
        separator,
        authorization.from_,
        authorization.to,
        int(authorization.value),
        int(authorization.valid_after),
        int(authorization.valid_before),
        authorization.nonce,
    )
