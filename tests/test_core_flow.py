"""The workflow of README "Money rules" on the sandbox store, with the real fal adapter
running against the simulator. Time is a FakeClock shared by the core and the simulator, so
a 7-second simulated job takes no real time and every step is deterministic."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fakes import FakeClock
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.jobs import NEVER_SUBMITTED, JobService
from videogen_cli.core.refunds import refund
from videogen_cli.core.replay import replay_key
from videogen_cli.core.requests import PreparedRequest
from videogen_cli.core.watching import Backoff, watch
from videogen_cli.domain import (
    Job,
    JobStatus,
    NewJob,
    ProviderHandle,
    ProviderIdentity,
    Submission,
)
from videogen_cli.errors import NotFoundError, ProviderError, RefusedError
from videogen_cli.ports import VideoProvider
from videogen_cli.providers.fal import FalQueueProvider
from videogen_cli.providers.simulator import build_simulator
from videogen_cli.storage.sqlite import SqliteStore


class CountingProvider:
    """Wraps the real provider to count submissions (the VideoProvider seam is ours)."""

    def __init__(self, inner: VideoProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.deadline: float | None = None
        self.submits = 0
        self.cancels: list[str] = []

    @property
    def identity(self) -> ProviderIdentity:
        return self.inner.identity

    def submit(self, endpoint_id: str, arguments: dict[str, object]) -> Submission:
        self.submits += 1
        return self.inner.submit(endpoint_id, arguments)

    def status(self, handle: ProviderHandle):  # type: ignore[no-untyped-def]
        return self.inner.status(handle)

    def result(self, handle: ProviderHandle):  # type: ignore[no-untyped-def]
        return self.inner.result(handle)

    def cancel(self, handle: ProviderHandle) -> str:
        self.cancels.append(handle.request_id)
        return self.inner.cancel(handle)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.sqlite3"


def make_service(db: Path, clock: FakeClock) -> tuple[JobService, CountingProvider]:
    provider = CountingProvider(build_simulator(db, clock=clock.now, sleep=clock.sleep))
    service = JobService(SqliteStore(db), lambda: provider, clock=clock, submit_grace_seconds=600)
    return service, provider


@pytest.fixture
def svc(db: Path, clock: FakeClock) -> Iterator[tuple[JobService, CountingProvider]]:
    service, provider = make_service(db, clock)
    yield service, provider
    service.close()
    assert_invariant(db)


def assert_invariant(db: Path) -> None:
    """README "Money rules": every balance equals the sum of its ledger; none is negative."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "select u.user_id, u.balance, coalesce(sum(l.delta), 0) from user_credits u"
        " left join credit_ledger l on l.user_id = u.user_id group by u.user_id"
    ).fetchall()
    con.close()
    for user_id, balance, ledger_sum in rows:
        assert balance == ledger_sum, user_id
        assert balance >= 0


def ledger(db: Path, job_id: str) -> list[tuple[str, int, str, str]]:
    con = sqlite3.connect(db)
    rows = con.execute(
        "select kind, delta, reason, operator from credit_ledger where job_id = ? order by id",
        (job_id,),
    ).fetchall()
    con.close()
    return rows


def prepared(service: JobService, prompt: str = "a boat", duration: str = "4s") -> PreparedRequest:
    return service.prepare(
        user_id=DEMO_USER_ID,
        model_ref="veo3.1",
        prompt=prompt,
        image_url=None,
        settings={"duration": duration},
    )


def test_generate_charges_once_and_a_replay_submits_nothing(
    svc: tuple[JobService, CountingProvider], db: Path
) -> None:
    service, provider = svc
    first = service.generate(prepared(service), "key-0001")
    assert (first.replayed, first.balance, first.job.credits_used) == (False, 84, 16)
    assert first.job.status is JobStatus.PENDING
    assert first.job.provider_request_id is not None
    again = service.generate(prepared(service), "key-0001")
    assert (again.replayed, again.balance, again.job.job_id) == (True, 84, first.job.job_id)
    assert provider.submits == 1
    assert ledger(db, first.job.job_id) == [("charge", -16, "generate", "videogen")]


def test_same_key_with_another_request_is_refused_and_changes_nothing(
    svc: tuple[JobService, CountingProvider],
) -> None:
    service, provider = svc
    service.generate(prepared(service), "key-0002")
    with pytest.raises(RefusedError) as err:
        service.generate(prepared(service, prompt="another boat"), "key-0002")
    assert err.value.code == "idempotency_key_reused"
    assert service.get_balance(DEMO_USER_ID) == 84
    assert provider.submits == 1


def test_insufficient_credits_is_refused_before_anything_is_written(
    svc: tuple[JobService, CountingProvider],
) -> None:
    service, provider = svc
    for n in range(3):
        service.generate(prepared(service, duration="8s"), f"key-big-{n}")
    assert service.get_balance(DEMO_USER_ID) == 4
    with pytest.raises(RefusedError) as err:
        service.generate(prepared(service, duration="4s"), "key-big-3")
    assert err.value.code == "insufficient_credits"
    assert service.get_idempotency_record("key-big-3") is None
    assert provider.submits == 3


def test_status_follows_the_simulated_job_to_a_video(
    svc: tuple[JobService, CountingProvider], clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service), "key-0003").job
    seen = []
    for _ in range(9):
        seen.append(service.refresh(job.job_id).job)
        clock.advance(1)
    assert [j.status.value for j in seen] == ["pending"] * 2 + ["processing"] * 5 + [
        "completed"
    ] * 2
    assert seen[0].queue_position == 1
    assert seen[1].queue_position == 0
    done = seen[-1]
    assert done.video_url is not None and done.video_url.startswith("https://")
    assert done.thumbnail_url is None
    assert done.queue_position is None


def test_failed_generation_is_refunded_exactly_once_across_many_pollers(
    db: Path, clock: FakeClock
) -> None:
    service, _ = make_service(db, clock)
    job = service.generate(prepared(service, prompt="boat sim:fail"), "key-0004").job
    clock.advance(10)
    services = [make_service(db, clock)[0] for _ in range(8)]
    barrier = threading.Barrier(len(services))
    results: list[Job] = []

    def poll(s: JobService) -> None:
        barrier.wait()
        results.append(s.refresh(job.job_id).job)

    threads = [threading.Thread(target=poll, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {j.status for j in results} == {JobStatus.FAILED}
    assert service.get_balance(DEMO_USER_ID) == 100
    kinds = [row[0] for row in ledger(db, job.job_id)]
    assert kinds == ["charge", "refund"]
    final = service.refresh(job.job_id).job
    assert (final.refunded_credits, final.error) == (16, "Runner disconnected")
    for s in [service, *services]:
        s.close()
    assert_invariant(db)


def test_refused_submission_fails_and_refunds_at_once(
    svc: tuple[JobService, CountingProvider], db: Path
) -> None:
    service, _ = svc
    outcome = service.generate(prepared(service, prompt="sim:refuse this"), "key-0005")
    assert isinstance(outcome.submit_error, RefusedError)
    assert outcome.job.status is JobStatus.FAILED
    assert outcome.job.error is not None and "submission failed" in outcome.job.error
    assert outcome.balance == 100
    assert [r[0] for r in ledger(db, outcome.job.job_id)] == ["charge", "refund"]


def test_unreachable_provider_at_submit_fails_and_refunds(db: Path, clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    dead = FalQueueProvider(
        "k", transport=httpx.MockTransport(refuse), sleep=clock.sleep, monotonic=clock.monotonic
    )
    service = JobService(SqliteStore(db), lambda: dead, clock=clock)
    outcome = service.generate(prepared(service), "key-0006")
    assert isinstance(outcome.submit_error, ProviderError)
    assert (outcome.job.status, outcome.balance) == (JobStatus.FAILED, 100)
    service.close()
    assert_invariant(db)


def test_result_error_after_completed_fails_and_refunds(
    svc: tuple[JobService, CountingProvider], clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service, prompt="sim:result-error"), "key-0007").job
    clock.advance(10)
    failed = service.refresh(job.job_id).job
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and "no_media_generated" in failed.error
    assert service.get_balance(DEMO_USER_ID) == 100


def test_transient_trouble_never_fails_a_job(
    svc: tuple[JobService, CountingProvider], clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service, prompt="sim:flaky"), "key-0008").job
    transient = 0
    for _ in range(40):
        outcome = service.refresh(job.job_id)
        transient += outcome.transient_error is not None
        assert outcome.job.status is not JobStatus.FAILED
        if outcome.job.status.terminal:
            break
        clock.advance(1)
    assert outcome.job.status is JobStatus.COMPLETED
    assert transient > 0


def test_requeue_from_processing_is_not_an_error(
    svc: tuple[JobService, CountingProvider], clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service, prompt="sim:requeue"), "key-0009").job
    statuses: list[str] = []
    for _ in range(30):
        current = service.refresh(job.job_id).job
        if not statuses or statuses[-1] != current.status.value:
            statuses.append(current.status.value)
        if current.status.terminal:
            break
        clock.advance(0.5)
    assert statuses == ["pending", "processing", "pending", "processing", "completed"]


def test_a_job_never_submitted_is_refunded_after_the_grace_period(
    svc: tuple[JobService, CountingProvider], clock: FakeClock, db: Path
) -> None:
    service, _ = svc
    p = prepared(service)
    # The process died between the charge and the submit: only create_job happened.
    dead_process = SqliteStore(db)
    created = dead_process.create_job(
        NewJob(
            DEMO_USER_ID,
            "key-0010",
            p.fingerprint,
            "veo3.1",
            "a boat",
            None,
            p.request.settings,
            p.cost,
            p.request.to_json(),
        )
    )
    clock.wall = created.job.created_at.timestamp() + 599
    assert service.refresh(created.job.job_id).job.status is JobStatus.PENDING
    clock.wall += 2
    failed = service.refresh(created.job.job_id).job
    assert (failed.status, failed.error) == (JobStatus.FAILED, NEVER_SUBMITTED)
    assert service.get_balance(DEMO_USER_ID) == 100
    # A late submission for that job is not recorded: the job stays failed and refunded.
    late = dead_process.record_submission(
        created.job.job_id,
        "fal-ai/veo3.1",
        Submission("late-id", None, None, None, 0),
        service.provider.identity,
    )
    dead_process.close()
    assert late.provider_request_id is None and late.status is JobStatus.FAILED


def test_watch_backs_off_and_stops_at_the_terminal_state(
    svc: tuple[JobService, CountingProvider], clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service), "key-0011").job
    polled: list[tuple[str, bool]] = []

    class Recorder:
        def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
            polled.append((job.status.value, changed))

        def waiting(self, seconds: float) -> None:
            pass

    result = watch(
        service, [job.job_id], timeout=300, backoff=Backoff(jitter=False), reporter=Recorder()
    )
    assert not result.timed_out
    assert result.jobs[job.job_id].status is JobStatus.COMPLETED
    assert clock.sleeps == [5.0, 10.0]
    assert polled == [("pending", True), ("processing", True), ("completed", True)]


def test_watch_deadline_clips_the_last_sleep_and_reports_timeout(
    svc: tuple[JobService, CountingProvider], clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service, prompt="sim:slow"), "key-0012").job

    class Quiet:
        def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
            pass

        def waiting(self, seconds: float) -> None:
            pass

    result = watch(
        service, [job.job_id], timeout=30, backoff=Backoff(jitter=False), reporter=Quiet()
    )
    assert result.timed_out
    assert clock.sleeps == [5.0, 10.0, 15.0]  # 5 + 10 + (20 clipped to the 15 s left)
    assert result.jobs[job.job_id].status is JobStatus.PROCESSING


def test_jitter_stays_within_twenty_percent_and_under_the_cap() -> None:
    b = Backoff(interval=5, max_interval=20, factor=2, jitter=True)
    assert b.delay(0, lambda: 0.0) == 4.0
    assert b.delay(0, lambda: 1.0) == pytest.approx(6.0)
    assert b.delay(5, lambda: 1.0) == 20.0


def test_refund_rules_and_exactly_once(
    svc: tuple[JobService, CountingProvider], clock: FakeClock, db: Path
) -> None:
    service, _ = svc
    job = service.generate(prepared(service), "key-0013").job
    with pytest.raises(RefusedError) as err:
        refund(service, job.job_id, None, "preview", "alice", dry_run=True)
    assert err.value.code == "job_not_refundable"
    clock.advance(10)
    service.refresh(job.job_id)
    with pytest.raises(RefusedError) as err:
        refund(service, job.job_id, 17, "preview", "alice", dry_run=True)
    assert err.value.code == "refund_exceeds_credits"
    first = refund(service, job.job_id, 10, "blank video", "alice")
    assert (first.refunded_now, first.refunded_credits, first.balance) == (True, 10, 94)
    # After a partial refund, another one is refused and names what was refunded…
    with pytest.raises(RefusedError) as err:
        refund(service, job.job_id, None, "again", "bob")
    assert err.value.code == "already_refunded" and "refunded 10 of the 16" in err.value.message
    # …while the very same refund again (a retry after a lost answer) is a no-op.
    second = refund(service, job.job_id, 10, "blank video", "alice")
    assert (second.refunded_now, second.refunded_credits, second.balance) == (False, 10, 94)
    assert ledger(db, job.job_id) == [
        ("charge", -16, "generate", "videogen"),
        ("refund", 10, "blank video", "alice"),
    ]


def test_refund_of_unknown_job_is_not_found(svc: tuple[JobService, CountingProvider]) -> None:
    service, _ = svc
    with pytest.raises(NotFoundError):
        refund(service, "00000000-0000-4000-a000-00000000ffff", None, "x", "alice", dry_run=True)


def test_replay_key_verdict_is_idempotent(svc: tuple[JobService, CountingProvider]) -> None:
    service, provider = svc
    job = service.generate(prepared(service), "key-0014").job
    verdict = replay_key(service, "key-0014")
    assert verdict.to_json() == {
        "idempotency_key": "key-0014",
        "job_id": job.job_id,
        "replayed": True,
        "balance_before": 84,
        "balance_after": 84,
        "verdict": "idempotent",
    }
    assert provider.submits == 1


def test_a_submit_that_outlives_the_grace_period_is_cancelled_at_fal(
    db: Path, clock: FakeClock
) -> None:
    """Another process failed and refunded the job while our submit hung: the fal job
    that the late answer names must be cancelled, and the refund stays the only one."""
    other, _ = make_service(db, clock)

    class StallingProvider(CountingProvider):
        def submit(self, endpoint_id: str, arguments: dict[str, object]) -> Submission:
            clock.advance(601)  # the POST hangs past the grace period…
            (stalled,) = other.list_jobs()
            other.refresh(stalled.job_id)  # …and a `status` elsewhere refunds the job
            return super().submit(endpoint_id, arguments)

    provider = StallingProvider(build_simulator(db, clock=clock.now, sleep=clock.sleep))
    service = JobService(SqliteStore(db), lambda: provider, clock=clock)
    outcome = service.generate(prepared(service), "key-0015")
    assert (outcome.job.status, outcome.job.error) == (JobStatus.FAILED, NEVER_SUBMITTED)
    assert outcome.job.provider_request_id is None
    assert len(provider.cancels) == 1 and provider.submits == 1
    assert outcome.balance == 100
    assert [r[0] for r in ledger(db, outcome.job.job_id)] == ["charge", "refund"]
    service.close()
    other.close()
    assert_invariant(db)
