"""Settling the sandbox's payments on a real node: a relayer that sends USDC's ``transferWithAuthorization``.

With ``SandboxConfig.rpc_url`` set, the facilitator reads balances and ``authorizationState`` from the chain,
and settles by sending the payer's signed authorization in a transaction signed by the relayer key (eth-account,
``eth_sendRawTransaction``), then polls for the receipt (anvil may return the hash before the receipt exists).
The gas estimate runs first: a revert there means nothing was sent, and its reason (USDC's own words) becomes
the x402 error reason. Receipts carry the real transaction hash.
"""

from __future__ import annotations

import time
from typing import Any

from ..chain import RpcError, UsdcChain
from ..models import PaymentPayload
from ..x402 import NETWORKS, keccak256

__all__ = ["ChainSettlement", "SettlementFailed"]

TRANSFER_WITH_AUTHORIZATION = keccak256(
    b"transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)[:4].hex()
RECEIPT_TIMEOUT = 60.0

# USDC's revert strings → x402 facilitator reasons (the client's vocabulary for a pre-settlement failure).
_REVERTS = (
    ("authorization is used or canceled", "nonce_already_used"),
    ("authorization is expired", "invalid_exact_evm_payload_authorization_valid_before"),
    ("authorization is not yet valid", "invalid_exact_evm_payload_authorization_valid_after"),
    ("transfer amount exceeds balance", "insufficient_funds"),
    ("invalid signature", "invalid_exact_evm_payload_signature"),
)


class SettlementFailed(Exception):
    """The chain did not move the money; ``reason`` is an x402 error reason, ``sent`` whether a tx went out."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class ChainSettlement:
    """Reads and settlements on one node, for one network's USDC."""

    def __init__(self, rpc_url: str, relayer_key: str, network: str, asset: str) -> None:
        from eth_account import Account

        self.chain = UsdcChain(rpc_url, timeout=30.0)
        self.network = NETWORKS[network]
        self.asset = asset
        self._relayer = Account.from_key(relayer_key)
        self._checked = False

    @property
    def relayer(self) -> str:
        return str(self._relayer.address)

    def __repr__(self) -> str:
        return f"ChainSettlement({self.chain.origin}, relayer={self.relayer})"

    def check(self) -> None:
        """Right chain, USDC's code there (raises ``ConfigurationError`` otherwise). Once per process."""
        if not self._checked:
            self.chain.check(self.network)
            self._checked = True

    def close(self) -> None:
        self.chain.close()

    def balance(self, address: str) -> int:
        self.check()
        return self.chain.balance_of(self.asset, address)

    def nonce_used(self, payer: str, nonce: str) -> bool:
        self.check()
        return self.chain.authorization_used(self.asset, payer, nonce)

    def settle(self, payment: PaymentPayload) -> str:
        """Send ``transferWithAuthorization``, wait for its receipt: the tx hash, or ``SettlementFailed``."""
        self.check()
        data = "0x" + TRANSFER_WITH_AUTHORIZATION + _arguments(payment)
        call: dict[str, Any] = {"from": self.relayer, "to": self.asset, "data": data}
        try:
            gas = self.chain.quantity(self.chain.rpc("eth_estimateGas", [call]), "eth_estimateGas")
        except RpcError as exc:
            raise SettlementFailed(_reason(exc.rpc_message), sent=False) from None
        tx = {
            "to": self.asset, "data": data, "value": 0, "gas": gas + gas // 5, "chainId": self.network.chain_id,
            "gasPrice": self.chain.quantity(self.chain.rpc("eth_gasPrice", []), "eth_gasPrice"),
            "nonce": self.chain.quantity(self.chain.rpc("eth_getTransactionCount", [self.relayer, "pending"]),
                                          "the relayer's nonce"),
        }  # fmt: skip
        signed = self._relayer.sign_transaction(tx)
        try:
            tx_hash = str(self.chain.rpc("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()]))
        except RpcError as exc:
            raise SettlementFailed(_reason(exc.rpc_message), sent=False) from None
        deadline = time.monotonic() + RECEIPT_TIMEOUT
        while (receipt := self.chain.receipt(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise SettlementFailed("unexpected_settle_error", sent=True)
            time.sleep(0.002)
        if not self.chain.receipt_uses(
            receipt, self.asset, payment.payload.authorization.from_, payment.payload.authorization.nonce
        ):
            raise SettlementFailed("unexpected_settle_error", sent=True)
        return tx_hash


def _arguments(payment: PaymentPayload) -> str:
    auth = payment.payload.authorization
    signature = bytes.fromhex(payment.payload.signature.removeprefix("0x"))
    if len(signature) != 65:
        raise SettlementFailed("invalid_exact_evm_payload_signature", sent=False)
    r, s, v = signature[:32], signature[32:64], signature[64]
    v = v + 27 if v < 27 else v
    words = [
        auth.from_.lower().removeprefix("0x").rjust(64, "0"),
        auth.to.lower().removeprefix("0x").rjust(64, "0"),
        int(auth.value).to_bytes(32, "big").hex(),
        int(auth.valid_after).to_bytes(32, "big").hex(),
        int(auth.valid_before).to_bytes(32, "big").hex(),
        auth.nonce.lower().removeprefix("0x").rjust(64, "0"),
        v.to_bytes(32, "big").hex(),
        r.hex(),
        s.hex(),
    ]
    return "".join(words)


def _reason(message: str) -> str:
    for needle, reason in _REVERTS:
        if needle in message:
            return reason
    return "unexpected_settle_error"
