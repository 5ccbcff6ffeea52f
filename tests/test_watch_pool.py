"""Many jobs at once: a bounded pool, one schedule per job, and the watch output."""

from __future__ import annotations

import io
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fakes import FakeClock
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.cli.output import Output
from videogen_cli.cli.progress import RECENT_CHANGES, LineReporter, LiveReporter, provider_note
from videogen_cli.core.jobs import JobService, SystemClock
from videogen_cli.core.watching import Backoff, watch
from videogen_cli.domain import Job, JobStatus
from videogen_cli.providers.fal import FalQueueProvider
from videogen_cli.providers.simulator import SimulatorTransport, build_simulator
from videogen_cli.storage.sqlite import SqliteStore


class Gauge(httpx.BaseTransport):
    """The simulator transport, counting requests in flight: from the request until its
    response body is closed (a stream stays in flight while it is open)."""

    def __init__(self, inner: SimulatorTransport) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.streams = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.streams += request.url.path.endswith("/stream")
        response = self.inner.handle_request(request)
        if response.is_closed:  # answered whole (JSON): the request is over
            self._leave()
        else:  # a stream: in flight until the client closes it
            response.stream = _Counted(response.stream, self._leave)
        return response

    def _leave(self) -> None:
        with self._lock:
            self.now -= 1


class _Counted(httpx.SyncByteStream):
    def __init__(self, inner: Any, leave: Callable[[], None]) -> None:
        self.inner = inner
        self.leave: Callable[[], None] | None = leave

    def __iter__(self) -> Iterator[bytes]:
        yield from self.inner

    def close(self) -> None:
        leave, self.leave = self.leave, None
        if leave is not None:
            leave()
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class Recorder:
    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.start = clock.monotonic()
        self.seen: list[tuple[float, str, str]] = []

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        if changed:
            self.seen.append((self.clock.monotonic() - self.start, job.job_id, job.status.value))

    def waiting(self, seconds: float) -> None:
        pass


def create(service: JobService, prompt: str) -> str:
    prepared = service.prepare(
        user_id=DEMO_USER_ID,
        model_ref="veo3.1",
        prompt=prompt,
        image_url=None,
        settings={"duration": "4s"},
    )
    return service.generate(prepared, str(uuid.uuid4())).job.job_id


def test_forty_jobs_never_have_more_than_the_pool_in_flight(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.sqlite3"
    gauge = Gauge(SimulatorTransport(db, speed=1000))
    provider = FalQueueProvider("sandbox", transport=gauge, name="simulator")
    service = JobService(SqliteStore(db), lambda: provider, clock=SystemClock())
    service.grant_credits(DEMO_USER_ID, 10_000, "bench", "test")
    ids = [create(service, f"boat {i}") for i in range(40)]
    result = watch(
        service,
        ids,
        timeout=120,
        backoff=Backoff(interval=0.01, max_interval=0.02),
        reporter=Recorder(SystemClock()),
        max_connections=4,
    )
    assert not result.timed_out
    assert {job.status for job in result.jobs.values()} == {JobStatus.COMPLETED}
    assert 1 <= gauge.peak <= 4
    assert gauge.streams >= 4  # streams were used, and handed on as jobs finished
    service.close()


def test_each_job_keeps_its_own_schedule(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "sandbox.sqlite3"
    provider = build_simulator(db, clock=clock.now, sleep=clock.sleep, monotonic=clock.monotonic)
    service = JobService(SqliteStore(db), lambda: provider, clock=clock)
    slow = create(service, "sim:slow boat")
    clock.advance(12)  # the second job starts later: its backoff starts from 5 s again
    fast = create(service, "a boat")
    recorder = Recorder(clock)
    result = watch(
        service,
        [slow, fast],
        timeout=100,
        backoff=Backoff(jitter=False),
        reporter=recorder,
        stream=False,
    )
    assert result.timed_out and result.jobs[fast].status is JobStatus.COMPLETED
    fast_seen = [(at, status) for at, job_id, status in recorder.seen if job_id == fast]
    # Polled at 0, 5 and 15 s on its own schedule, whatever the slow job does.
    assert fast_seen == [(0.0, "pending"), (5.0, "processing"), (15.0, "completed")]
    # The slow job's polls: 0, 5, 15, 35, 55, 75, 95 (5 → 10 → 20 s cap), unslowed.
    assert clock.sleeps == [5.0, 10.0, 20.0, 20.0, 20.0, 20.0, 5.0]
    service.close()


class CountingStore:
    """Counts reads of the store (a seam we own)."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.reads = 0

    def get_job(self, job_id: str) -> Job | None:
        self.reads += 1
        return self.inner.get_job(job_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_watch_of_a_finished_job_reads_it_once_and_asks_no_provider(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "sandbox.sqlite3"
    provider = build_simulator(db, clock=clock.now, sleep=clock.sleep, monotonic=clock.monotonic)
    service = JobService(SqliteStore(db), lambda: provider, clock=clock)
    job_id = create(service, "a boat")
    clock.advance(10)
    assert service.refresh(job_id).job.status is JobStatus.COMPLETED
    counting = CountingStore(SqliteStore(db))
    built: list[bool] = []

    def factory() -> FalQueueProvider:
        built.append(True)
        return provider

    again = JobService(counting, factory, clock=clock)
    result = watch(again, [job_id], timeout=10, backoff=Backoff(), reporter=Recorder(clock))
    assert result.jobs[job_id].status is JobStatus.COMPLETED
    assert (counting.reads, built) == (1, [])
    service.close()


def test_heartbeat_comes_each_minute_on_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock()
    db = tmp_path / "sandbox.sqlite3"
    provider = build_simulator(db, clock=clock.now, sleep=clock.sleep, monotonic=clock.monotonic)
    service = JobService(SqliteStore(db), lambda: provider, clock=clock)
    job_id = create(service, "sim:slow boat")
    reporter = LineReporter(Output(json_mode=False), clock)
    watch(
        service,
        [job_id],
        timeout=200,
        backoff=Backoff(jitter=False),
        reporter=reporter,
        stream=False,
    )
    lines = capsys.readouterr().err.splitlines()

    def stamp(line: str) -> float:
        found = re.match(r"\[\s*([0-9.]+)s\]", line)
        assert found, line
        return float(found.group(1))

    stamps = [stamp(line) for line in lines if "still processing" in line]
    changes = [line for line in lines if line.endswith(" processing") and "still" not in line]
    last_change = max(stamp(line) for line in changes)
    assert stamps == [last_change + 60, last_change + 120, last_change + 180]
    service.close()


def test_the_deadline_is_shown_in_plain_words() -> None:
    assert provider_note("deadline reached before the fal GET /a/b/status was sent") == (
        "deadline reached"
    )
    assert provider_note("HTTP 503: busy") == "provider: HTTP 503: busy"


def _job(n: int, status: JobStatus, error: str | None = None) -> Job:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 25, tzinfo=UTC)
    return Job(
        job_id=f"00000000-0000-4000-a000-{n:012d}",
        user_id=DEMO_USER_ID,
        model="veo3.1",
        status=status,
        prompt="a boat",
        settings={},
        credits_used=16,
        refunded_credits=16 if error else 0,
        created_at=now,
        updated_at=now,
        error=error,
    )


def _text(reporter: LiveReporter) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(reporter._render())
    return console.export_text()


def test_live_table_has_an_error_column_and_a_summary_above_twenty_jobs() -> None:
    clock = FakeClock()
    few = LiveReporter(clock)
    few.polled(_job(1, JobStatus.FAILED, "Runner disconnected"), changed=True, transient_error=None)
    text = _text(few)
    assert "error" in text.splitlines()[0] and "Runner disconnected" in text
    many = LiveReporter(clock)
    for n in range(30):
        status = JobStatus.COMPLETED if n % 3 == 0 else JobStatus.PROCESSING
        many.polled(_job(n, status), changed=True, transient_error=None)
    lines = _text(many).splitlines()
    assert "30 jobs" in lines[1] and "20 processing, 10 completed" in lines[1]
    assert len(lines) == 2 + RECENT_CHANGES  # header, summary, the latest changes
    assert lines[2].startswith(_job(29, JobStatus.PROCESSING).job_id)  # newest first
