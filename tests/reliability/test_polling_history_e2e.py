"""Polling learns from the ledger, end to end: a real sandbox on loopback, the real service and ledger.

No timing assertions: what is checked is what the ledger recorded (kind, creation, the bracket of each
end), that later jobs are handed the history of the earlier ones, and that it plans aimed polls.
(The lag ratios themselves are tested on a simulated clock in tests/test_history.py: the sandbox
always reports progress, so it cannot stand in for an API that reports none.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagine_agent.config import Settings
from imagine_agent.history import RenderHistory
from imagine_agent.origin import origin_of
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.service import ImagineService

KEY = "0x" + "5d" * 32
SPEED = 20.0  # a 60 s job takes 3 s; the 15 s tick scales to 0.75 s (IMAGINE_POLL_FIRST = IMAGINE_POLL_CAP)
TICK = 15.0 / SPEED


def test_the_service_records_brackets_and_aims_from_them(tmp_path: Path) -> None:
    config = SandboxConfig(speed=SPEED, job_seconds=(57.0, 63.0))
    with (
        SandboxServer(config) as sandbox,
        ImagineService.create(
            Settings(
                base_url=sandbox.url,
                private_key=KEY,
                data_dir=tmp_path,
                poll_first=TICK,
                poll_cap=TICK,
                poll_floor=0.05,
            )
        ) as service,
    ):
        service.output_dir = tmp_path / "videos"
        handed: list[RenderHistory | None] = []
        learn = service._learn

        def spy(job: Any) -> None:
            learn(job)
            handed.append(job.history)

        service._learn = spy  # type: ignore[method-assign]
        for i in range(5):
            outcome = service.generate(f"a lighthouse at dusk, take {i}", duration=8, download=False)
            assert outcome.status is not None and outcome.status.status == "completed"
        origin = origin_of(sandbox.url)
        brackets = service.ledger.completion_brackets(origin, "", 8.0)
        assert len(brackets) == 5
        assert all(0 <= lo < hi for lo, hi in brackets)
        record = service.ledger.get_task(outcome.task_id)
        assert record is not None and (record.origin, record.model, record.duration) == (origin, "", 8.0)
        assert record.completed_at is not None and record.last_pending_at is not None
        assert record.created_at <= record.last_pending_at < record.completed_at
        assert handed[0] is None and all(h is not None for h in handed[1:])  # the first job had no history
        assert [len(h.brackets) for h in handed[1:] if h is not None] == [1, 2, 3, 4]
        history = RenderHistory.of(brackets)
        assert history is not None and history.plan(offset=0, first=TICK, cap=TICK, floor=0.05)
