"""What a finished video comes with besides the file: its public media page and the coin, if one was deployed.

One place, so the CLI, tools, MCP, plugin and narration say the same thing (DESIGN rule 6: whenever a
coin is deployed, say that the paying wallet becomes its creator, or that the token existed before).
"""

from __future__ import annotations

from typing import Any

from .models import TaskStatus

__all__ = ["coin_line", "delivery_facts"]


def delivery_facts(status: TaskStatus | None, payer: str | None) -> dict[str, Any]:
    """``mediaUrl`` and ``coin`` ({address, symbol, chain, external, creator, note}) when the result has them."""
    if status is None:
        return {}
    out: dict[str, Any] = {}
    if status.media_url:
        out["mediaUrl"] = status.media_url
    token = status.coin
    if token is not None:
        coin: dict[str, Any] = {"address": token.address, "symbol": token.symbol, "chain": token.chain,
                                "external": token.external}
        if token.metadata is not None and token.metadata.name:
            coin["name"] = token.metadata.name
        if token.external:
            coin["note"] = "the token existed before this video; it was attached, not deployed for it"
        else:
            coin["creator"] = payer
            coin["note"] = (f"a coin was deployed for this video; the paying wallet {payer} is its creator and "
                            "earns its trading fees")
        out["coin"] = coin
    if status.transaction:
        out["txHash"] = status.transaction
    return out


def coin_line(facts: dict[str, Any]) -> str | None:
    """One line about the coin for text surfaces, or None when there is none."""
    coin = facts.get("coin")
    if not coin:
        return None
    symbol = f"${coin['symbol']} " if coin.get("symbol") else ""
    where = f" on {coin['chain']}" if coin.get("chain") else ""
    return f"{symbol}{coin['address']}{where}: {coin['note']}"
