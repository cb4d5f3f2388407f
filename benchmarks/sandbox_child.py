"""The sandbox in its own process, so the client being measured shares no CPU time or GIL with it.

``python -m benchmarks.sandbox_child --speed 20 --seed 0`` serves the sandbox on a free loopback port,
prints ``{"url": ...}`` once it is ready, and stops when its stdin closes. It adds one read-only
route for the benchmarks: ``GET /_bench/jobs/{task_id}`` → when the job was created and how long it
runs (in the sandbox's time scale), so the client can compute the lag from completion to detection.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.requests import Request
from starlette.responses import JSONResponse

from imagine_agent.sandbox import SandboxConfig, SandboxServer

from .common import REPO, child_env

__all__ = ["sandbox_process"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--job-seconds", type=float, nargs=2, default=(60.0, 180.0))
    args = parser.parse_args()
    config = SandboxConfig(
        speed=args.speed,
        seed=args.seed,
        job_seconds=tuple(args.job_seconds),
        default_balance=10**15,  # a billion simulated USDC: thousands of 1 USDC jobs never run dry
    )
    server = SandboxServer(config)
    state = server.state

    async def bench_job(request: Request) -> JSONResponse:
        job = state.job(request.path_params["task_id"])
        if job is None:
            return JSONResponse({"error": "no such task"}, status_code=404)
        return JSONResponse({"createdAt": job.created_at, "runSeconds": job.run_seconds})

    server.app.add_route("/_bench/jobs/{task_id}", bench_job, methods=["GET"])
    with server:
        print(json.dumps({"url": server.url}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)


@contextmanager
def sandbox_process(speed: float, seed: int = 0, job_seconds: tuple[float, float] = (60.0, 180.0)) -> Iterator[str]:
    """Start the sandbox in a child process; yields its base URL."""
    low, high = job_seconds
    argv = ["--speed", str(speed), "--seed", str(seed), "--job-seconds", str(low), str(high)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sandbox_child", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process exited before it was ready")
        yield str(json.loads(line)["url"])
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
