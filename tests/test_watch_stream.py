"""`watch` over fal's status stream, and its fallbacks, on the real adapter against the
simulator. Time is a FakeClock shared by the loop, the adapter and the simulator, so a
20-second silence or a 30-second deadline takes no real time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fakes import FakeClock
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.jobs import JobService
from videogen_cli.core.watching import Backoff, check_once, watch
from videogen_cli.domain import Job, JobStatus
from videogen_cli.providers.fal import FalQueueProvider
from videogen_cli.providers.simulator import SimulatorTransport
from videogen_cli.storage.sqlite import SqliteStore


class Recording(httpx.BaseTransport):
    """The simulator transport, with every request it answers written down."""

    def __init__(self, inner: SimulatorTransport) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.calls.append(f"{request.method} {_kind(request.url.path)} {response.status_code}")
        return response

    def close(self) -> None:
        self.inner.close()


def _kind(path: str) -> str:
    if path.endswith("/status/stream"):
        return "stream"
    if path.endswith("/status"):
        return "status"
    return "result" if "/requests/" in path else "submit"


class Recorder:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.start = clock.monotonic()
        self.seen: list[tuple[float, str, str]] = []
        self.follows: list[tuple[str, bool, str | None]] = []

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        if changed:
            at = round(self.clock.monotonic() - self.start, 3)
            self.seen.append((at, job.job_id, job.status.value))

    def waiting(self, seconds: float) -> None:
        pass

    def following(self, job_id: str, streaming: bool, reason: str | None) -> None:
        self.follows.append((job_id, streaming, reason))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wired(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[JobService, Recording]]:
    db = tmp_path / "sandbox.sqlite3"
    transport = Recording(SimulatorTransport(db, clock=clock.now, sleep=clock.sleep))
    provider = FalQueueProvider(
        "sandbox",
        transport=transport,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        name="simulator",
    )
    service = JobService(SqliteStore(db), lambda: provider, clock=clock)
    yield service, transport
    service.close()


def submit(service: JobService, transport: Recording, prompt: str = "a boat") -> str:
    prepared = service.prepare(
        user_id=DEMO_USER_ID,
        model_ref="veo3.1",
        prompt=prompt,
        image_url=None,
        settings={"duration": "4s"},
    )
    job_id = service.generate(prepared, str(uuid.uuid4())).job.job_id
    transport.calls.clear()
    return job_id


def test_one_job_is_followed_in_one_stream_and_one_result_call(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport)
    recorder = Recorder(clock)
    result = watch(service, [job_id], timeout=300, backoff=Backoff(jitter=False), reporter=recorder)
    assert result.jobs[job_id].status is JobStatus.COMPLETED
    assert transport.calls == ["GET stream 200", "GET result 200"]
    # Every change is stored as the simulator's timeline makes it; done at 7 s, seen then.
    statuses = [status for _, _, status in recorder.seen]
    assert statuses == ["pending", "pending", "processing", "completed"]
    assert recorder.seen[-1][0] == 7.0
    assert service.find_job(job_id).video_url == result.jobs[job_id].video_url  # type: ignore[union-attr]
    assert recorder.follows == [(job_id, True, None)]


def test_a_refused_stream_falls_back_to_todays_polling(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport, "a boat sim:no-stream")
    recorder = Recorder(clock)
    start = len(clock.sleeps)
    result = watch(service, [job_id], timeout=300, backoff=Backoff(jitter=False), reporter=recorder)
    assert result.jobs[job_id].status is JobStatus.COMPLETED
    assert transport.calls == [
        "GET stream 405",
        "GET status 202",
        "GET status 202",
        "GET status 200",
        "GET result 200",
    ]
    assert clock.sleeps[start:] == [5.0, 10.0]  # the backoff of a polling watch
    assert recorder.follows[0][1] is False and "HTTP 405" in str(recorder.follows[0][2])


def test_no_stream_polls_without_asking_for_one(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport)
    watch(
        service,
        [job_id],
        timeout=300,
        backoff=Backoff(jitter=False),
        reporter=Recorder(clock),
        stream=False,
    )
    assert transport.calls == [
        "GET status 202",
        "GET status 202",
        "GET status 200",
        "GET result 200",
    ]


def test_a_broken_stream_hands_the_job_to_polling(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport, "a boat sim:stream-drop")
    recorder = Recorder(clock)
    result = watch(service, [job_id], timeout=300, backoff=Backoff(jitter=False), reporter=recorder)
    assert result.jobs[job_id].status is JobStatus.COMPLETED
    assert transport.calls[0] == "GET stream 200"
    assert transport.calls[1:] == ["GET status 202", "GET status 202", "GET status 200",
                                   "GET result 200"]  # fmt: skip
    assert [f[1] for f in recorder.follows] == [True, False]
    assert "broke" in str(recorder.follows[1][2])


def test_a_silent_stream_is_given_up_after_its_keepalive_and_polled(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport, "a boat sim:stream-quiet")
    recorder = Recorder(clock)
    result = watch(service, [job_id], timeout=300, backoff=Backoff(jitter=False), reporter=recorder)
    assert result.jobs[job_id].status is JobStatus.COMPLETED
    assert "silent for 20 s" in str(recorder.follows[1][2])
    # Given up at 20 s (15 s keep-alive + margin), then polled at once: done by then.
    assert recorder.seen[-1] == (20.0, job_id, "completed")
    assert transport.calls == ["GET stream 200", "GET status 200", "GET result 200"]


def test_the_deadline_bounds_the_stream(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport, "a boat sim:slow")
    start = clock.monotonic()
    result = watch(
        service, [job_id], timeout=30, backoff=Backoff(jitter=False), reporter=Recorder(clock)
    )
    assert result.timed_out
    assert result.jobs[job_id].status is JobStatus.PROCESSING
    assert clock.monotonic() - start <= 30.0  # no read outlived the deadline
    # Reopened once with its read timeout clipped to the 15 s left; no poll at the end.
    assert transport.calls == ["GET stream 200", "GET stream 200"]


def test_status_reads_the_first_event_of_the_stream(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport)
    clock.advance(3)
    assert check_once(service, job_id).job.status is JobStatus.PROCESSING
    clock.advance(10)
    done = check_once(service, job_id).job
    assert done.status is JobStatus.COMPLETED and done.video_url
    assert transport.calls == ["GET stream 200", "GET stream 200", "GET result 200"]


def test_status_polls_where_the_stream_is_refused(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    service, transport = wired
    job_id = submit(service, transport, "a boat sim:no-stream")
    clock.advance(3)
    assert check_once(service, job_id).job.status is JobStatus.PROCESSING
    assert transport.calls == ["GET stream 405", "GET status 202"]


def test_many_jobs_where_the_stream_is_refused_ask_for_it_once(
    wired: tuple[JobService, Recording], clock: FakeClock
) -> None:
    """One stream is tried before the others: a refusal then costs one request in all,
    not one per job in the first round, and the jobs are polled as with --no-stream."""
    service, transport = wired
    job_ids = [submit(service, transport, "a boat sim:no-stream") for _ in range(6)]
    result = watch(
        service, job_ids, timeout=300, backoff=Backoff(jitter=False), reporter=Recorder(clock)
    )
    assert all(j.status is JobStatus.COMPLETED for j in result.jobs.values())
    assert transport.calls.count("GET stream 405") == 1
    assert result.streams == 1
    assert transport.calls.count("GET result 200") == 6
