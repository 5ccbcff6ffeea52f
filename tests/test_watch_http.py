"""`watch` against the fal queue emulator over real HTTP (tests/bench/fal_emulator.py):
what a socket-level server sees, which the in-process simulator transport cannot show."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.fal_emulator import FalEmulator
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.jobs import JobService, SystemClock
from videogen_cli.core.watching import Backoff, watch
from videogen_cli.domain import Job
from videogen_cli.providers.fal import FalQueueProvider
from videogen_cli.storage.sqlite import SqliteStore


class Quiet:
    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        pass

    def waiting(self, seconds: float) -> None:
        pass


@pytest.fixture
def emulator() -> Iterator[FalEmulator]:
    with FalEmulator(latency=0.0, run_seconds=0.3) as emu:
        yield emu


def _service(tmp_path: Path, emu: FalEmulator) -> JobService:
    provider = FalQueueProvider("test-key", base_url=emu.url)
    store = SqliteStore(tmp_path / "sandbox.sqlite3")
    return JobService(store, lambda: provider, clock=SystemClock())


def test_a_streamed_job_uses_one_connection_for_submit_stream_and_result(
    tmp_path: Path, emulator: FalEmulator
) -> None:
    """The stream is read to the end fal gives it after COMPLETED, so its connection goes
    back to the pool and carries the result fetch. Dropping it instead made a 200-job
    watch hold 33 connections at fal for a moment (the old one not yet closed there)."""
    service = _service(tmp_path, emulator)
    service.grant_credits(DEMO_USER_ID, 100, "test", "test")
    prepared = service.prepare(
        user_id=DEMO_USER_ID,
        model_ref="veo3.1",
        prompt="a boat",
        image_url=None,
        settings={"duration": "4s"},
    )
    job = service.generate(prepared, str(uuid.uuid4())).job
    result = watch(service, [job.job_id], timeout=60, backoff=Backoff(), reporter=Quiet())
    service.close()

    assert result.jobs[job.job_id].status.value == "completed"
    assert result.streams == 1
    assert emulator.counts.requests == {"submit": 1, "stream": 1, "result": 1}
    assert emulator.counts.opened == 1
