"""The body of a payer run in its own OS process (``multiprocessing`` spawn) by the rule-4 tests.

Its own module, with only the service's imports: a spawned child imports the module its target lives in,
and the test module would bring pytest, the sandbox's web framework and the shared fixtures into every child.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagine_agent.config import Settings
from imagine_agent.service import ImagineService

__all__ = ["generate_in_process"]


def generate_in_process(
    url: str, data_dir: str, ledger_url: str | None, key: str, poll: dict[str, float], start: Any, out: Any
) -> None:
    """Wait for ``start``, ask for the shared video once, and put the task id (or the error) on ``out``."""
    settings = Settings(
        base_url=url, private_key=key, data_dir=Path(data_dir), ledger_url=ledger_url, approval_threshold=None, **poll
    )
    with ImagineService.create(settings) as service:
        start.wait()
        try:
            outcome = service.generate("four processes, one video", duration=2, wait=False)
            out.put(json.dumps({"task": outcome.task_id, "attached": outcome.attached}))
        except Exception as exc:  # reported to the parent, which fails the test with it
            out.put(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
