"""Issue 11's figures, each a ratio measured in the same run (`make bench`).

The fal emulator is the simulator transport with an injected latency before every
answer (``Latency``), on the real adapter, so requests, streams and the 32-connection
pool behave as against fal. Completion times are set in the simulator's table, so the
moment each job completes is known and the lag is measured from it.

Goals (issue 11): one job seen < 1 s after completion with <= 4 requests to fal in all;
a refused stream completes by polling with today's counts; 200 jobs at 100 ms latency
finishing over ~10 s: exit lag <= 1.5 x one job's; 500 jobs: peak RSS <= 100 MiB; never
more than 32 requests in flight; `videogen --help` <= 1.3 x and `generate --help`
<= 1.5 x a bare `import typer, rich.console`.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.jobs import JobService, SystemClock
from videogen_cli.core.watching import Backoff, watch
from videogen_cli.providers.fal import FalQueueProvider
from videogen_cli.providers.simulator import SimulatorTransport
from videogen_cli.storage.sqlite import SqliteStore

RUN_SECONDS = 7.0  # a simulated job at speed 1: queued 2 s, running 5 s
LATENCY = 0.1


class Latency(httpx.BaseTransport):
    """The simulator with fal's round trip added; counts requests and those in flight."""

    def __init__(self, inner: SimulatorTransport, latency: float) -> None:
        self.inner = inner
        self.latency = latency
        self.lock = threading.Lock()
        self.requests = 0
        self.now = 0
        self.peak = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests += 1
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.latency)
        response = self.inner.handle_request(request)
        if response.is_closed:
            self._leave()
        else:
            response.stream = _Closing(response.stream, self._leave)
        return response

    def _leave(self) -> None:
        with self.lock:
            self.now -= 1


class _Closing(httpx.SyncByteStream):
    def __init__(self, inner: Any, leave: Any) -> None:
        self.inner, self.leave = inner, leave

    def __iter__(self) -> Iterator[bytes]:
        yield from self.inner

    def close(self) -> None:
        leave, self.leave = self.leave, None
        if leave is not None:
            leave()
        getattr(self.inner, "close", lambda: None)()


class Quiet:
    def polled(self, job: Any, *, changed: bool, transient_error: str | None) -> None:
        pass

    def waiting(self, seconds: float) -> None:
        pass


def _service(db: Path, latency: float) -> tuple[JobService, Latency]:
    simulator = SimulatorTransport(db)
    transport = Latency(simulator, latency)
    # The simulator's own identity (as build_simulator gives it): the jobs are then the
    # sandbox's, which `videogen watch` in another process follows (README "Each job
    # stays with its provider").
    provider = FalQueueProvider(
        "sandbox", transport=transport, name="simulator", identity=simulator.identity
    )
    return JobService(SqliteStore(db), lambda: provider, clock=SystemClock()), transport


def _jobs(db: Path, count: int, prompt: str = "bench") -> list[str]:
    """`count` submitted jobs (no latency: setting up is not measured)."""
    service, _ = _service(db, 0.0)
    service.grant_credits(DEMO_USER_ID, 20 * count, "bench", "bench")
    prepared = service.prepare(
        user_id=DEMO_USER_ID,
        model_ref="veo3.1",
        prompt=prompt,
        image_url=None,
        settings={"duration": "4s"},
    )
    ids = [service.generate(prepared, str(uuid.uuid4())).job.job_id for _ in range(count)]
    service.close()
    return ids


def _complete_at(db: Path, job_ids: list[str], moments: list[float]) -> None:
    """Move each job's simulated submit time so that it completes at that wall time."""
    con = sqlite3.connect(db)
    with con:
        for job_id, at in zip(job_ids, moments, strict=True):
            con.execute(
                "update sim_requests set submitted_at = ? where request_id ="
                " (select provider_request_id from video_jobs where job_id = ?)",
                (at - RUN_SECONDS, job_id),
            )
    con.close()


def watch_lag(
    count: int, *, stream: bool, spread: float, first_in: float, prompt: str = "bench"
) -> dict[str, float]:
    db = Path(tempfile.mkdtemp(prefix="videogen-watch-")) / "sandbox.sqlite3"
    ids = _jobs(db, count, prompt)
    start = time.time()
    moments = [start + first_in + spread * i / max(1, count - 1) for i in range(count)]
    _complete_at(db, ids, moments)
    service, transport = _service(db, LATENCY)
    transport.requests = 0
    result = watch(service, ids, timeout=600, backoff=Backoff(), reporter=Quiet(), stream=stream)
    lag = time.time() - max(moments)
    assert all(j.status.value == "completed" for j in result.jobs.values()), result
    service.close()
    return {"lag": lag, "requests": transport.requests / count, "peak": transport.peak}


def peak_rss_500() -> float:
    home = Path(tempfile.mkdtemp(prefix="videogen-rss-"))
    ids = _jobs(home / "sandbox.sqlite3", 500)
    env = {**os.environ, "VIDEOGEN_HOME": str(home), "VIDEOGEN_SIM_SPEED": "100"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-m", "videogen_cli", "watch", *ids, "--json"],
        env=env,
        capture_output=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert proc.stdout.count(b'"completed"') == 500
    return max(before, after) / 1024  # KiB -> MiB (the largest child so far)


def startup(runs: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU time of each command, in ms (interleaved runs)."""
    exe = Path(sys.executable).parent / "videogen"
    bare_app = Path(__file__).with_name("bare_typer_app.py")
    cases = {
        "bare import typer, rich.console": [sys.executable, "-c", "import typer, rich.console"],
        "bare Typer app --help": [sys.executable, str(bare_app), "--help"],
        "bare Typer app generate --help": [sys.executable, str(bare_app), "generate", "--help"],
        "videogen --help": [str(exe), "--help"],
        "videogen generate --help": [str(exe), "generate", "--help"],
    }
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in cases}
    for _ in range(runs):
        for name, args in cases.items():
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(args, capture_output=True, check=True)
            wall = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            samples[name][0].append(wall * 1000)
            samples[name][1].append(cpu * 1000)
    return {k: (statistics.median(w), statistics.median(c)) for k, (w, c) in samples.items()}


def main() -> None:
    print("\n-- watch (issue 11), fal emulator with 100 ms latency --")
    one = [watch_lag(1, stream=True, spread=0, first_in=3) for _ in range(3)]
    polled = watch_lag(1, stream=False, spread=0, first_in=RUN_SECONDS)
    lag1 = statistics.median(r["lag"] for r in one)
    print(
        f"one job, stream (default)   lag {lag1:6.2f} s   requests {one[0]['requests'] + 1:.0f}"
        "  (+1: the submit)   goal < 1 s, <= 4"
    )
    print(
        f"one job, polling            lag {polled['lag']:6.2f} s   requests"
        f" {polled['requests'] + 1:.0f}   ratio stream/polling lag {lag1 / polled['lag']:.3f}"
    )
    refused = watch_lag(1, stream=True, spread=0, first_in=RUN_SECONDS, prompt="b sim:no-stream")
    print(
        f"one job, stream refused     lag {refused['lag']:6.2f} s   requests"
        f" {refused['requests'] + 1:.0f}   (polling + the refused stream request)"
    )
    many = watch_lag(200, stream=True, spread=10, first_in=3)
    print(
        f"200 jobs over 10 s          exit lag {many['lag']:6.2f} s   "
        f"ratio to one job {many['lag'] / lag1:.2f}  (goal <= 1.5)   "
        f"peak in flight {many['peak']:.0f} (goal <= 32)   requests/job {many['requests']:.1f}"
    )
    many_polled = watch_lag(200, stream=False, spread=10, first_in=3)
    print(
        f"200 jobs, --no-stream       exit lag {many_polled['lag']:6.2f} s   "
        f"ratio to one polled job {many_polled['lag'] / polled['lag']:.2f}   "
        f"peak in flight {many_polled['peak']:.0f}"
    )
    print(f"500 jobs (CLI, --json)      peak RSS {peak_rss_500():.0f} MiB  (goal <= 100)")

    print("\n-- start-up (median of 15, wall and CPU; ratio to the bare import) --")
    figures = startup(15)
    base_wall, base_cpu = figures["bare import typer, rich.console"]
    for name, (wall, cpu) in figures.items():
        print(
            f"{name:<34} wall {wall:6.0f} ms ({wall / base_wall:.2f}x)"
            f"  cpu {cpu:6.0f} ms ({cpu / base_cpu:.2f}x)"
        )
    print("goals: videogen --help <= 1.3x, videogen generate --help <= 1.5x")


if __name__ == "__main__":
    main()
