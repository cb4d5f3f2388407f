"""Polling learns from the ledger, end to end: a real sandbox on loopback, the real service and ledger.

No timing assertions: what is checked is what the ledger recorded (kind, creation, the bracket of each
end) and that, once jobs of the kind are known, the polls land between the ticks (brackets narrower
than the tick), which fixed polling can never do.
"""

from __future__ import annotations

from pathlib import Path

from imagine_agent.config import Settings
from imagine_agent.history import RenderHistory
from imagine_agent.origin import origin_of
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.service import ImagineService

KEY = "0x" + "5d" * 32
SPEED = 20.0  # a 60 s job takes 3 s; the 15 s tick scales to 0.75 s (IMAGINE_POLL_FIRST = IMAGINE_POLL_CAP)
TICK = 15.0 / SPEED


def test_the_service_records_brackets_and_aims_from_them(tmp_path: Path) -> None:
    config = SandboxConfig(speed=SPEED, job_seconds=(57.0, 63.0), rich_results=True)  # no `progress` field
    with SandboxServer(config) as sandbox, ImagineService.create(Settings(
            base_url=sandbox.url, private_key=KEY, data_dir=tmp_path, poll_first=TICK, poll_cap=TICK,
            poll_floor=0.05)) as service:
        service.output_dir = tmp_path / "videos"
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
        # The first job had no history: polled on the tick. Later ones aimed between ticks.
        assert brackets[-1][1] - brackets[-1][0] >= TICK * 0.9
        assert min(hi - lo for lo, hi in brackets[:-1]) < TICK * 0.9
        history = RenderHistory.of(brackets)
        assert history is not None and history.plan(offset=0, first=TICK, cap=TICK, floor=0.05)
