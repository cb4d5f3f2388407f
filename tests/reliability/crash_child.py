"""A generate run that kills itself (SIGKILL, no cleanup) right after a chosen step of a payment.

    python -m tests.reliability.crash_child BASE_URL DATA_DIR STEP
STEP: none | reserved | journaled | paid | waiting. Prints the outcome JSON when it survives.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from imagine_agent.config import Settings
from imagine_agent.service import ImagineService


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_after(cls: type, name: str) -> None:
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        die()
        return result

    setattr(cls, name, wrapper)


def main() -> None:
    base_url, data_dir, step = sys.argv[1:4]
    settings = Settings(
        base_url=base_url, data_dir=data_dir, poll_first=0.02, poll_floor=0.02, poll_cap=0.2, approval_threshold=None
    )
    with ImagineService.create(settings) as service:
        ledger_cls = type(service.ledger)
        if step == "reserved":
            crash_after(ledger_cls, "reserve")
        elif step == "journaled":
            crash_after(ledger_cls, "journal_authorization")
        elif step == "paid":
            crash_after(ledger_cls, "mark_paid")

        def on_progress(status: Any) -> None:
            if step == "waiting" and status.status == "processing":
                die()

        outcome = service.generate(
            "the crash test video", duration=4, output_dir=os.path.join(data_dir, "out"), on_progress=on_progress
        )
        print(json.dumps(outcome.to_json()))


if __name__ == "__main__":
    main()
