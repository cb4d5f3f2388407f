"""How big the reliability runs are: ``short`` in CI (the default), ``long`` on demand.

IMAGINE_RELIABILITY_PROFILE=long python -m pytest tests/reliability
python -m benchmarks.reliability --profile long
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ENV", "PROFILES", "Profile", "current"]

ENV = "IMAGINE_RELIABILITY_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes of one reliability run."""

    name: str
    load_jobs: int  # concurrent generations from one async process
    processes: int  # processes paying from one shared SQLite budget
    jobs_per_process: int  # concurrent generations in each of them
    admitted: int  # payments the shared total cap admits: fewer than processes x jobs_per_process
    fuzz_examples: int  # hypothesis examples per parser of untrusted input
    speed: float  # sandbox time scale under load: a 60-180 s job takes 60/speed-180/speed s

    @property
    def attempted(self) -> int:
        return self.processes * self.jobs_per_process


PROFILES: dict[str, Profile] = {
    "short": Profile(
        "short", load_jobs=100, processes=4, jobs_per_process=25, admitted=75, fuzz_examples=150, speed=60.0
    ),
    "long": Profile(
        "long", load_jobs=1000, processes=8, jobs_per_process=125, admitted=750, fuzz_examples=2000, speed=60.0
    ),
}


def current(name: str | None = None) -> Profile:
    """The named profile, else the one ``IMAGINE_RELIABILITY_PROFILE`` names, else ``short``."""
    chosen = name or os.environ.get(ENV) or "short"
    if chosen not in PROFILES:
        raise ValueError(f"{ENV}={chosen!r}: expected one of {', '.join(PROFILES)}")
    return PROFILES[chosen]
