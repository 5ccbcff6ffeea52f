"""Issue 6, core side: each job stays with its provider, one "not found" is never final,
Retry-After is honoured, a 5xx that names its request is followed, generate makes three
store calls, and `reconcile` leaves nothing to a person.

The sandbox store and the real fal adapter against the simulator, on a FakeClock; fal
itself is an httpx.MockTransport at the adapter's transport seam where a test needs an
answer the simulator does not give.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fakes import FakeClock
from tests.support.jobs import charged_job
from tests.test_core_flow import (
    CountingProvider,
    assert_invariant,
    ledger,
    make_service,
    prepared,
)
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.jobs import NOT_FOUND_LIMIT, JobService
from videogen_cli.core.reconcile import reconcile
from videogen_cli.core.requests import prepare_request
from videogen_cli.domain import Job, JobStatus, ProviderIdentity
from videogen_cli.errors import ProviderError, RefusedError, UsageError
from videogen_cli.ports import NEVER_SUBMITTED, JobStore
from videogen_cli.providers.fal import FalQueueProvider, fal_origin
from videogen_cli.providers.simulator import build_simulator
from videogen_cli.storage.sandbox_functions import format_ts
from videogen_cli.storage.sqlite import SqliteStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.sqlite3"


@pytest.fixture
def svc(db: Path, clock: FakeClock) -> Iterator[tuple[JobService, CountingProvider]]:
    service, provider = make_service(db, clock)
    yield service, provider
    service.close()
    assert_invariant(db)


def kinds(db: Path, job_id: str) -> list[str]:
    return [row[0] for row in ledger(db, job_id)]


class Recorder:
    """An httpx handler that records requests and answers from a script (then 500s)."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else httpx.Response(500, text="unscripted")


def fal_on(handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock, **kw: Any) -> Any:
    return FalQueueProvider(
        "fal-secret-key-0123456789",
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        now=clock.now,
        **kw,
    )


# --- provider identity ------------------------------------------------------------------


def test_the_simulator_identity_is_made_once_per_sandbox_file(tmp_path: Path) -> None:
    one = build_simulator(tmp_path / "a.sqlite3")
    again = build_simulator(tmp_path / "a.sqlite3")
    other = build_simulator(tmp_path / "b.sqlite3")
    assert one.identity.name == "simulator"
    assert one.identity.origin.startswith("sandbox:")
    assert one.identity == again.identity  # persisted in the file, not in the process
    assert other.identity != one.identity  # another VIDEOGEN_HOME is another provider
    for p in (one, again, other):
        p.close()


def test_the_fal_identity_is_the_queue_url_without_credentials() -> None:
    plain = FalQueueProvider("k")
    assert plain.identity == ProviderIdentity("fal", "https://queue.fal.run")
    assert fal_origin("HTTPS://user:pw@Queue.Example.com/base/") == "https://queue.example.com/base"
    plain.close()


def test_generate_records_who_took_the_job(svc: tuple[JobService, CountingProvider]) -> None:
    service, provider = svc
    job = service.generate(prepared(service), "key-id-01").job
    assert job.provider_identity == provider.identity
    assert service.find_job(job.job_id) == job


# --- cross-provider reads ---------------------------------------------------------------


def test_another_sandboxs_simulator_shows_the_job_and_changes_nothing(
    svc: tuple[JobService, CountingProvider], db: Path, clock: FakeClock, tmp_path: Path
) -> None:
    """One shared store, two homes: the second home's simulator never knew the job."""
    service, _ = svc
    job = service.generate(prepared(service, prompt="boat sim:lost"), "key-x-01").job
    foreign = CountingProvider(
        build_simulator(tmp_path / "other-home.sqlite3", clock=clock.now, sleep=clock.sleep)
    )
    reader = JobService(SqliteStore(db), lambda: foreign, clock=clock)
    for _ in range(NOT_FOUND_LIMIT + 2):
        clock.advance(10)
        outcome = reader.refresh(job.job_id)
        assert (outcome.synced, outcome.job) == (False, job)
    assert outcome.not_synced_reason == (
        f"job {job.job_id} was submitted to the simulator of {job.provider_origin}, but this "
        f"process is configured for the simulator of {foreign.identity.origin}; shown as "
        "stored, not synced (run it with the VIDEOGEN_HOME whose simulator took the job)"
    )
    assert kinds(db, job.job_id) == ["charge"]
    assert reader.find_job(job.job_id) == job
    reader.close()


def test_fal_configured_elsewhere_never_asks_about_a_simulator_job(
    svc: tuple[JobService, CountingProvider], db: Path, clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service), "key-x-02").job
    wire = Recorder()
    fal = fal_on(wire, clock, base_url="https://queue.elsewhere.example")
    reader = JobService(SqliteStore(db), lambda: fal, clock=clock)
    outcome = reader.refresh(job.job_id)
    assert (outcome.synced, outcome.job, outcome.transient_error) == (False, job, None)
    assert outcome.not_synced_reason is not None
    assert "configured for fal at https://queue.elsewhere.example" in outcome.not_synced_reason
    assert "fal-secret-key" not in outcome.not_synced_reason
    assert wire.requests == []
    assert kinds(db, job.job_id) == ["charge"]
    reader.close()


def test_a_fal_job_read_by_the_simulator_is_not_synced(
    db: Path, clock: FakeClock, svc: tuple[JobService, CountingProvider]
) -> None:
    """The issue's first finding: made with FAL_KEY, read in the same home without it."""
    wire = Recorder(
        httpx.Response(
            200,
            json={"status": "IN_QUEUE", "request_id": "fal-r1", "queue_position": 0},
            headers={"x-fal-request-id": "fal-r1"},
        )
    )
    fal = fal_on(wire, clock)
    maker = JobService(SqliteStore(db), lambda: fal, clock=clock)
    job = maker.generate(prepared(maker), "key-x-03").job
    assert job.provider_identity == ProviderIdentity("fal", "https://queue.fal.run")
    service, _ = svc
    for _ in range(NOT_FOUND_LIMIT + 1):
        outcome = service.refresh(job.job_id)
        assert (outcome.synced, outcome.job.status) == (False, JobStatus.PENDING)
    assert outcome.not_synced_reason is not None
    assert outcome.not_synced_reason.endswith(
        "(run it with FAL_KEY set and VIDEOGEN_FAL_QUEUE_URL=https://queue.fal.run)"
    )
    assert kinds(db, job.job_id) == ["charge"]
    maker.close()


def test_a_job_from_before_providers_were_recorded_syncs_through_the_configured_one(
    svc: tuple[JobService, CountingProvider], db: Path, clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service), "key-x-04").job
    with sqlite3.connect(db) as con:
        con.execute(
            "update video_jobs set provider = null, provider_origin = null where job_id = ?",
            (job.job_id,),
        )
    clock.advance(10)
    outcome = service.refresh(job.job_id)
    assert (outcome.synced, outcome.job.status) == (True, JobStatus.COMPLETED)


# --- the not-found rule -----------------------------------------------------------------


def test_one_not_found_then_normal_answers_completes_with_nothing_refunded(
    svc: tuple[JobService, CountingProvider], db: Path, clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service, prompt="boat sim:lost-once"), "key-nf-01").job
    first = service.refresh(job.job_id)
    assert first.job.status is JobStatus.PENDING
    assert first.job.not_found_count == 1
    assert first.transient_error == (
        f"fal does not know request {job.provider_request_id} (Request not found); "
        f"answer 1 of {NOT_FOUND_LIMIT} in a row before the job is failed and refunded"
    )
    second = service.refresh(job.job_id)
    assert (second.job.not_found_count, second.transient_error) == (0, None)  # reset
    clock.advance(10)
    done = service.refresh(job.job_id).job
    assert done.status is JobStatus.COMPLETED and done.refunded_credits == 0
    assert kinds(db, job.job_id) == ["charge"]


def test_not_found_always_fails_and_refunds_once_after_the_limit(
    svc: tuple[JobService, CountingProvider], db: Path, clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service, prompt="boat sim:lost"), "key-nf-02").job
    for n in range(1, NOT_FOUND_LIMIT):
        outcome = service.refresh(job.job_id)
        assert (outcome.job.status, outcome.job.not_found_count) == (JobStatus.PENDING, n)
        assert kinds(db, job.job_id) == ["charge"]
        clock.advance(5)
    failed = service.refresh(job.job_id).job
    assert failed.status is JobStatus.FAILED
    assert failed.error == (
        f"its provider did not know the request {NOT_FOUND_LIMIT} times in a row: "
        f"fal does not know request {job.provider_request_id} (Request not found)"
    )
    for _ in range(3):  # later reads and pollers refund nothing more
        assert service.refresh(job.job_id).job == failed
    assert ledger(db, job.job_id) == [
        ("charge", -16, "generate", "videogen"),
        ("refund", 16, f"job failed: {failed.error}", "videogen"),
    ]
    assert service.get_balance(DEMO_USER_ID) == 100


def test_a_transient_error_between_not_founds_does_not_reset_the_count(
    db: Path, clock: FakeClock
) -> None:
    """Only an answer about the job resets it; a 503 says nothing about the job."""
    lost = httpx.Response(404, json={"detail": "Request not found"})
    busy = httpx.Response(503, text="<html>nginx</html>")
    wire = Recorder(
        httpx.Response(200, json={"request_id": "r-t"}, headers={"x-fal-request-id": "r-t"}),
        lost,
        busy,
        busy,
        busy,
        lost,
        httpx.Response(202, json={"status": "IN_PROGRESS"}),
        lost,
    )
    fal = fal_on(wire, clock)
    service = JobService(SqliteStore(db), lambda: fal, clock=clock)
    job = service.generate(prepared(service), "key-nf-03").job
    counts = [service.refresh(job.job_id).job.not_found_count for _ in range(5)]
    # 404, 503 ×3 (no answer about the job: unchanged), 404, IN_PROGRESS (resets), 404
    assert counts == [1, 1, 2, 0, 1]
    service.close()


# --- Retry-After through the core ---------------------------------------------------------


def test_sim_retry_after_is_waited_out_as_fal_asked(
    svc: tuple[JobService, CountingProvider], clock: FakeClock
) -> None:
    service, _ = svc
    job = service.generate(prepared(service, prompt="boat sim:retry-after"), "key-ra-01").job
    outcome = service.refresh(job.job_id)
    # 429 "Retry-After: 1", then 503 with an HTTP-date 1 s ahead (whole seconds on the
    # fake clock), then the answer: one refresh, no transient error.
    assert clock.sleeps == [1.0, 1.0]
    assert (outcome.transient_error, outcome.job.status) == (None, JobStatus.PROCESSING)
    clock.advance(10)
    assert service.refresh(job.job_id).job.status is JobStatus.COMPLETED


# --- the submit decision ------------------------------------------------------------------


def test_a_5xx_submit_that_names_its_request_keeps_the_job_and_follows_it(
    db: Path, clock: FakeClock
) -> None:
    wire = Recorder(
        httpx.Response(500, text="runner blew up", headers={"x-fal-request-id": "r-named"}),
        httpx.Response(202, json={"status": "IN_PROGRESS", "request_id": "r-named"}),
    )
    fal = fal_on(wire, clock)
    service = JobService(SqliteStore(db), lambda: fal, clock=clock)
    outcome = service.generate(prepared(service), "key-sd-01")
    job = outcome.job
    assert (outcome.submit_error, outcome.balance) == (None, 84)
    assert (job.status, job.provider_request_id) == (JobStatus.PENDING, "r-named")
    assert job.status_url == "https://queue.fal.run/fal-ai/veo3.1/requests/r-named/status"
    assert outcome.notice == (
        "fal answered the submit with HTTP 500: HTTP 500 Internal Server Error: runner blew "
        "up but named request r-named; the job is followed under that id"
    )
    assert len(wire.requests) == 1  # never resubmitted
    assert kinds(db, job.job_id) == ["charge"]
    followed = service.refresh(job.job_id).job
    assert followed.status is JobStatus.PROCESSING
    assert str(wire.requests[1].url) == f"{job.status_url}?logs=0"
    service.close()
    assert_invariant(db)


def test_a_named_request_fal_never_knew_is_refunded_by_the_not_found_rule(
    db: Path, clock: FakeClock
) -> None:
    lost = httpx.Response(404, json={"detail": "Request not found"})
    wire = Recorder(
        httpx.Response(503, text="queue hiccup", headers={"x-fal-request-id": "r-ghost"}),
        *[lost] * NOT_FOUND_LIMIT,
    )
    fal = fal_on(wire, clock)
    service = JobService(SqliteStore(db), lambda: fal, clock=clock)
    job = service.generate(prepared(service), "key-sd-02").job
    statuses = [service.refresh(job.job_id).job.status for _ in range(NOT_FOUND_LIMIT)]
    assert statuses == [JobStatus.PENDING] * (NOT_FOUND_LIMIT - 1) + [JobStatus.FAILED]
    assert kinds(db, job.job_id) == ["charge", "refund"]
    service.close()
    assert_invariant(db)


def test_a_read_timeout_at_submit_still_fails_and_refunds_at_once(
    db: Path, clock: FakeClock
) -> None:
    """No request id, nothing to follow: the charge comes back now (as before)."""

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    service = JobService(SqliteStore(db), lambda: fal_on(hang, clock), clock=clock)
    outcome = service.generate(prepared(service), "key-sd-03")
    assert isinstance(outcome.submit_error, ProviderError)
    assert outcome.submit_error.code == "provider_outcome_unknown"
    assert (outcome.job.status, outcome.balance) == (JobStatus.FAILED, 100)
    service.close()


# --- generate: three store calls, and the charge callback ---------------------------------


class CountingStore:
    """Wraps a JobStore (our seam) and records every method called on it."""

    def __init__(self, inner: JobStore) -> None:
        self._inner = inner
        self.calls: list[str] = []
        self.backend_name = inner.backend_name

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


def test_generate_makes_three_store_calls_and_reports_the_charge_once(
    db: Path, clock: FakeClock
) -> None:
    store = CountingStore(SqliteStore(db))
    provider = CountingProvider(build_simulator(db, clock=clock.now, sleep=clock.sleep))
    service = JobService(store, lambda: provider, clock=clock)
    charged: list[tuple[str, int, int]] = []

    def on_charged(job: Job) -> None:
        charged.append((job.job_id, job.credits_used, provider.submits))

    def prepare(prompt: str = "a boat", duration: str = "4s") -> Any:
        return prepare_request(
            store,
            user_id=DEMO_USER_ID,
            model_ref="veo3.1",
            prompt=prompt,
            image_url=None,
            settings={"duration": duration},
        )

    outcome = service.generate(prepare(), "key-3c-01", on_charged=on_charged)
    assert store.calls == ["get_model", "create_job", "record_submission"]
    assert outcome.balance == 84
    assert charged == [(outcome.job.job_id, 16, 0)]  # after the charge, before the submit

    store.calls.clear()
    service.generate(prepare(), "key-3c-01", on_charged=on_charged)  # a replay
    assert store.calls == ["get_model", "create_job"]
    refused = service.generate(prepare("sim:refuse"), "key-3c-02", on_charged=on_charged)
    assert (refused.job.status, refused.balance) == (JobStatus.FAILED, 84)
    assert len(charged) == 2  # the refused job was charged (and refunded), the replay not
    service.generate(prepare(duration="8s"), "key-3c-03")
    service.generate(prepare(duration="8s"), "key-3c-04")  # 20 credits left
    with pytest.raises(RefusedError) as refusal:
        service.generate(prepare(duration="8s"), "key-3c-05", on_charged=on_charged)
    assert refusal.value.code == "insufficient_credits"
    assert len(charged) == 2
    service.close()
    assert_invariant(db)


# --- reconcile ----------------------------------------------------------------------------


def strand(key: str, age: timedelta, db: Path) -> Job:
    """A job charged by a process that died before submitting, ``age`` ago."""
    with closing(SqliteStore(db)) as dead_process:
        job = charged_job(dead_process, key)
    when = format_ts(datetime.now(UTC) - age)  # the stored format
    with sqlite3.connect(db) as con:
        con.execute("update video_jobs set created_at = ? where job_id = ?", (when, job.job_id))
    return job


def test_reconcile_dry_run_then_for_real(db: Path, clock: FakeClock, tmp_path: Path) -> None:
    service, provider = make_service(db, clock)
    done = service.generate(prepared(service), "key-rc-01").job
    lost = service.generate(prepared(service, prompt="sim:lost"), "key-rc-02").job
    old = strand("key-rc-03", timedelta(hours=1), db)
    fresh = strand("key-rc-04", timedelta(seconds=5), db)
    # A job another sandbox's simulator took, in this shared store.
    elsewhere = CountingProvider(build_simulator(tmp_path / "b.sqlite3", clock=clock.now))
    theirs = JobService(SqliteStore(db), lambda: elsewhere, clock=clock)
    foreign = theirs.generate(prepared(theirs), "key-rc-05").job
    clock.advance(10)
    assert service.get_balance(DEMO_USER_ID) == 20

    calls_before = provider.submits
    wire_before = provider_calls(db)
    dry = reconcile(service, dry_run=True).to_json()
    assert provider_calls(db) == wire_before and provider.submits == calls_before
    assert service.get_balance(DEMO_USER_ID) == 20
    assert {k: dry[k] for k in COUNTS} == {
        "seen": 5, "synced": 0, "completed": 0, "failed_and_refunded": 0,
        "stranded_and_refunded": 0, "skipped_other_provider": 1, "transient_errors": 0,
        "awaiting_submit": 1, "would_sync": 2, "would_refund_stranded": 1,
    }  # fmt: skip
    assert dry["stranded_refunded_credits"] == 16

    actions = {}
    for round_ in range(NOT_FOUND_LIMIT):
        summary = reconcile(service).to_json()
        actions[round_] = {j["job_id"]: j["action"] for j in summary["jobs"]}
    assert actions[0] == {
        done.job_id: "completed",
        lost.job_id: "transient_error",
        old.job_id: "stranded_and_refunded",
        fresh.job_id: "awaiting_submit",
        foreign.job_id: "skipped_other_provider",
    }
    assert actions[NOT_FOUND_LIMIT - 1] == {
        lost.job_id: "failed_and_refunded",
        fresh.job_id: "awaiting_submit",
        foreign.job_id: "skipped_other_provider",
    }
    assert kinds(db, old.job_id) == ["charge", "refund"]
    assert service.find_job(old.job_id).error == NEVER_SUBMITTED  # type: ignore[union-attr]
    assert kinds(db, lost.job_id) == ["charge", "refund"]
    assert kinds(db, fresh.job_id) == ["charge"]
    assert kinds(db, foreign.job_id) == ["charge"]
    assert kinds(db, done.job_id) == ["charge"]
    assert service.get_balance(DEMO_USER_ID) == 52
    for s in (service, theirs):
        s.close()
    assert_invariant(db)


COUNTS = (
    "seen", "synced", "completed", "failed_and_refunded", "stranded_and_refunded",
    "skipped_other_provider", "transient_errors", "awaiting_submit", "would_sync",
    "would_refund_stranded",
)  # fmt: skip


def provider_calls(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(
            con.execute("select coalesce(sum(status_calls), 0) from sim_requests").fetchone()[0]
        )


@pytest.mark.parametrize(
    ("older_than", "limit"), [(-1.0, 10), (float("nan"), 10), (float("inf"), 10), (0.0, 0)]
)
def test_reconcile_refuses_bad_options_before_reading_anything(
    older_than: float, limit: int, db: Path, clock: FakeClock
) -> None:
    store = CountingStore(SqliteStore(db))
    service = JobService(store, lambda: None, clock=clock)  # type: ignore[arg-type,return-value]
    with pytest.raises(UsageError):
        reconcile(service, older_than=older_than, limit=limit)
    assert store.calls == []
    service.close()


def test_refresh_with_a_known_job_reads_nothing_more(db: Path, clock: FakeClock) -> None:
    """A caller that just read the job (watch of a finished job: 1 read) passes it in."""
    store = CountingStore(SqliteStore(db))
    provider = CountingProvider(build_simulator(db, clock=clock.now, sleep=clock.sleep))
    service = JobService(store, lambda: provider, clock=clock)
    job = service.generate(prepared(service), "key-kn-01").job
    clock.advance(10)
    store.calls.clear()
    done = service.refresh(job.job_id, known=job).job
    assert done.status is JobStatus.COMPLETED
    assert "get_job" not in store.calls
    store.calls.clear()
    assert service.refresh(job.job_id, known=done).job == done
    assert store.calls == []
    assert service.refresh(job.job_id).job == done
    assert store.calls == ["get_job"]
    service.close()
