"""The body of a payer run in its own OS process (``multiprocessing`` spawn) by the concurrency test.

Its own module, with only the wallet's imports: a spawned child imports the module its target lives in, and the
test module would bring pytest and the PostgreSQL fixtures into each of the eight children (0.4 s of CPU each).
"""

from __future__ import annotations

import json
from typing import Any

from imagine_agent.errors import BudgetExceededError
from imagine_agent.ledger import Caps, open_ledger
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner, parse_payment_required

from ..spec import SPEC_402

__all__ = ["ADMITS", "CAPS", "PRICE", "URL", "pay_many"]

URL = "https://eliza.getimagine.club/generation/create"
PRICE = 1_000_000
ADMITS = 7
CAPS = Caps(per_call=PRICE, total=ADMITS * PRICE, daily=None, rate_per_minute=None)


def pay_many(ledger_url: str, attempts: int, start: Any, out: Any) -> None:
    """Wait for ``start``, try ``attempts`` payments, and put the headers signed and the refusals on ``out``."""
    wallet = Wallet(PrivateKeySigner.generate(), open_ledger(ledger_url), PaymentPolicy(caps=CAPS))
    required = parse_payment_required(SPEC_402)
    start.wait()
    headers, refused = [], 0
    for i in range(attempts):
        try:
            auth = wallet.authorize(required, resource_url=URL, request_hash=f"{wallet.address}-{i}")
            headers.append(auth.header)
        except BudgetExceededError:
            refused += 1
    out.put(json.dumps({"headers": headers, "refused": refused}))
    wallet.ledger.close()
