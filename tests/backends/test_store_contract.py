"""One contract for every JobStore: the rules written in videogen_cli/ports.py.

Each test runs on three stores: ``sqlite`` (the sandbox), ``postgres`` (PostgresStore on
a fresh migrated database) and ``supabase`` (the real supabase-py client over real HTTP
to the PostgREST stub, on the same kind of database). After every test the fixture
checks, straight from the tables, that each balance equals the sum of its ledger, that no
balance is negative and that every failed job was refunded exactly once. The last test
runs one scripted session on all three stores and compares the transcripts.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.backends.conftest import Backend
from videogen_cli.catalog import SEED_MODELS
from videogen_cli.domain import (
    CreateJobResult,
    GrantOutcome,
    IdempotencyRecord,
    Job,
    JobStatus,
    LedgerEntry,
    LedgerKind,
    Model,
    NewJob,
    ProviderIdentity,
    RefundOutcome,
    StrandedSweep,
    Submission,
)
from videogen_cli.errors import NotFoundError, RefusedError, UsageError, VideogenError
from videogen_cli.ports import NEVER_SUBMITTED, SYSTEM_OPERATOR
from videogen_cli.storage.migrate import functions_sql

SETTINGS = {"duration": "4s", "resolution": "720p", "aspect_ratio": "16:9"}
FAL = ProviderIdentity("fal", "https://queue.fal.run")
SIM = ProviderIdentity("simulator", "sandbox:0a000000-0000-4000-8000-00000000c0de")


def new_job(
    user_id: str,
    *,
    key: str | None = None,
    cost: int = 8,
    fingerprint: str | None = None,
    model: str = "veo3.1",
    prompt: str = "a paper boat drifting down a rainy street",
) -> NewJob:
    request = {"user_id": user_id, "model": model, "prompt": prompt, "settings": SETTINGS}
    return NewJob(
        user_id=user_id,
        idempotency_key=key or f"key-{uuid.uuid4()}",
        fingerprint=fingerprint or f"fp:{user_id}:{model}:{prompt}:{cost}",
        model_slug=model,
        prompt=prompt,
        image_url=None,
        settings=dict(SETTINGS),
        cost=cost,
        request=request,
    )


def submission(request_id: str = "req-1", queue_position: int | None = 2) -> Submission:
    base = f"https://queue.fal.run/fal-ai/veo3.1/requests/{request_id}"
    return Submission(
        request_id=request_id,
        status_url=f"{base}/status",
        response_url=base,
        cancel_url=f"{base}/cancel",
        queue_position=queue_position,
    )


def ledger_kinds(backend: Backend, user_id: str) -> list[tuple[LedgerKind, int]]:
    return [(e.kind, e.delta) for e in backend.store.list_ledger(user_id, limit=1000)]


# --- grants and reads --------------------------------------------------------------------


def test_grant_creates_the_account_and_writes_the_ledger(backend: Backend) -> None:
    store = backend.store
    user = str(uuid.uuid4())
    assert store.get_balance(user) is None
    assert store.grant_credits(user, 10, "welcome", "alice").balance == 10
    assert store.grant_credits(user, 5, "top-up", "bob").balance == 15
    assert store.get_balance(user) == 15

    entries = store.list_ledger(user)
    assert [(e.kind, e.delta, e.reason, e.operator, e.job_id) for e in entries] == [
        (LedgerKind.GRANT, 5, "top-up", "bob", None),
        (LedgerKind.GRANT, 10, "welcome", "alice", None),
    ]
    assert all(e.user_id == user and e.created_at.tzinfo is not None for e in entries)
    assert entries[0].id > entries[1].id
    assert [e.delta for e in store.list_ledger(user, limit=1)] == [5]

    with pytest.raises(UsageError):
        store.grant_credits(user, 0, "nothing", "alice")
    assert store.get_balance(user) == 15


def test_models_are_the_seed_catalog(backend: Backend) -> None:
    store = backend.store
    assert store.list_models() == sorted(SEED_MODELS, key=lambda m: m.slug)
    veo = next(m for m in SEED_MODELS if m.slug == "veo3.1")
    assert store.get_model("veo3.1") == veo
    assert store.get_model(veo.id) == veo
    assert store.get_model("no-such-model") is None


def test_reads_of_unknown_things_are_empty(backend: Backend) -> None:
    store = backend.store
    assert store.get_job("not-a-uuid") is None
    assert store.get_job(str(uuid.uuid4())) is None
    assert store.get_idempotency_record("never-used") is None
    assert store.list_ledger(str(uuid.uuid4())) == []
    assert store.list_jobs(str(uuid.uuid4())) == []
    assert store.get_balance(str(uuid.uuid4())) is None


# --- create_job --------------------------------------------------------------------------


def test_create_job_charges_once_and_records_the_key(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    new = new_job(user, cost=8)

    result = store.create_job(new)

    assert isinstance(result, CreateJobResult)
    assert result.replayed is False
    assert result.balance == 12 == store.get_balance(user)
    job = result.job
    assert job.status is JobStatus.PENDING
    assert (job.user_id, job.model, job.prompt, job.settings) == (
        user,
        "veo3.1",
        new.prompt,
        SETTINGS,
    )
    assert (job.credits_used, job.refunded_credits) == (8, 0)
    assert job.idempotency_key == new.idempotency_key
    assert job.endpoint_id == "fal-ai/veo3.1"
    assert job.provider_request_id is None and job.queue_position is None
    assert job.created_at.tzinfo is not None and job.updated_at.tzinfo is not None
    assert store.get_job(job.job_id) == job

    charge = store.list_ledger(user)[0]
    assert (charge.kind, charge.delta, charge.job_id, charge.reason, charge.operator) == (
        LedgerKind.CHARGE,
        -8,
        job.job_id,
        "generate",
        SYSTEM_OPERATOR,
    )
    record = store.get_idempotency_record(new.idempotency_key)
    assert isinstance(record, IdempotencyRecord)
    assert (record.key, record.user_id, record.fingerprint, record.job_id) == (
        new.idempotency_key,
        user,
        new.fingerprint,
        job.job_id,
    )
    assert record.request == new.request
    assert record.created_at.tzinfo is not None


def test_same_key_same_request_replays_without_charging(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    new = new_job(user, cost=8)
    first = store.create_job(new)

    again = store.create_job(new)

    assert again.replayed is True
    assert again.job == first.job
    assert again.balance == 12 == store.get_balance(user)
    assert ledger_kinds(backend, user) == [(LedgerKind.CHARGE, -8), (LedgerKind.GRANT, 20)]
    assert len(store.list_jobs(user)) == 1


def test_replay_reports_the_current_balance(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    new = new_job(user, cost=8)
    store.create_job(new)
    store.grant_credits(user, 5, "top-up", "alice")

    assert store.create_job(new).balance == 17


def test_same_key_with_another_request_is_refused(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    other_user = backend.new_user(20)
    new = new_job(user, cost=8)
    store.create_job(new)

    with pytest.raises(RefusedError) as changed:
        store.create_job(new_job(user, key=new.idempotency_key, cost=8, prompt="another"))
    assert changed.value.code == "idempotency_key_reused"
    # Keys are global and the fingerprint covers the user: another user's request with
    # this key is a different request.
    with pytest.raises(RefusedError) as foreign:
        store.create_job(new_job(other_user, key=new.idempotency_key, cost=8))
    assert foreign.value.code == "idempotency_key_reused"

    assert store.get_balance(user) == 12
    assert store.get_balance(other_user) == 20
    assert store.list_jobs(other_user) == []


def test_unknown_user_is_not_found_and_writes_nothing(backend: Backend) -> None:
    store = backend.store
    ghost = str(uuid.uuid4())
    new = new_job(ghost)

    with pytest.raises(NotFoundError) as err:
        store.create_job(new)

    assert err.value.code == "user_not_found"
    assert store.get_idempotency_record(new.idempotency_key) is None
    assert store.get_balance(ghost) is None
    assert store.list_jobs(ghost) == []


def test_unknown_model_is_not_found_and_charges_nothing(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    new = new_job(user, model="no-such-model")

    with pytest.raises(NotFoundError) as err:
        store.create_job(new)

    assert err.value.code == "model_not_found"
    assert store.get_balance(user) == 20
    assert store.get_idempotency_record(new.idempotency_key) is None


def test_insufficient_credits_writes_nothing(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(7)
    new = new_job(user, cost=8)

    with pytest.raises(RefusedError) as err:
        store.create_job(new)

    assert err.value.code == "insufficient_credits"
    assert store.get_balance(user) == 7
    assert store.get_idempotency_record(new.idempotency_key) is None
    assert store.list_jobs(user) == []
    assert ledger_kinds(backend, user) == [(LedgerKind.GRANT, 7)]

    # The refusal was not stored: once the user has credits the same key goes through.
    store.grant_credits(user, 1, "top-up", "alice")
    result = store.create_job(new)
    assert (result.replayed, result.balance) == (False, 0)


def test_a_balance_of_exactly_the_cost_is_enough(backend: Backend) -> None:
    user = backend.new_user(8)
    assert backend.store.create_job(new_job(user, cost=8)).balance == 0


# --- record_submission -------------------------------------------------------------------


def test_record_submission_stores_the_first_request_only(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job = store.create_job(new_job(user)).job

    recorded = store.record_submission(job.job_id, "fal-ai/veo3.1", submission("req-1", 2), FAL)

    assert recorded.provider_request_id == "req-1"
    assert recorded.status_url == submission("req-1").status_url
    assert recorded.response_url == submission("req-1").response_url
    assert recorded.cancel_url == submission("req-1").cancel_url
    assert recorded.queue_position == 2
    assert recorded.endpoint_id == "fal-ai/veo3.1"
    assert recorded.status is JobStatus.PENDING
    assert store.get_job(job.job_id) == recorded

    # A second submission (e.g. a retry after a lost answer) changes nothing: the caller
    # compares request ids.
    again = store.record_submission(job.job_id, "fal-ai/veo3.1", submission("req-2", 0), FAL)
    assert again == recorded


def test_record_submission_leaves_a_failed_job_alone(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job = store.create_job(new_job(user)).job
    failed = store.fail_job(job.job_id, "never submitted")

    assert store.record_submission(job.job_id, "fal-ai/veo3.1", submission(), FAL) == failed


def test_record_submission_of_an_unknown_job(backend: Backend) -> None:
    with pytest.raises(NotFoundError) as err:
        backend.store.record_submission(str(uuid.uuid4()), "fal-ai/veo3.1", submission(), FAL)
    assert err.value.code == "job_not_found"


# --- apply_status ------------------------------------------------------------------------


def test_apply_status_moves_a_live_job(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = store.create_job(new_job(user)).job.job_id
    store.record_submission(job_id, "fal-ai/veo3.1", submission("req-1", 5), FAL)

    queued = store.apply_status(job_id, JobStatus.PENDING, queue_position=3)
    assert (queued.status, queued.queue_position) == (JobStatus.PENDING, 3)

    running = store.apply_status(job_id, JobStatus.PROCESSING)
    assert (running.status, running.queue_position) == (JobStatus.PROCESSING, None)

    # fal may move a job back to the queue: not an error.
    requeued = store.apply_status(job_id, JobStatus.PENDING, queue_position=0)
    assert (requeued.status, requeued.queue_position) == (JobStatus.PENDING, 0)

    done = store.apply_status(
        job_id,
        JobStatus.COMPLETED,
        video_url="https://v3.fal.media/files/out.mp4",
        thumbnail_url="https://v3.fal.media/files/out.jpg",
    )
    assert done.status is JobStatus.COMPLETED
    assert done.video_url == "https://v3.fal.media/files/out.mp4"
    assert done.thumbnail_url == "https://v3.fal.media/files/out.jpg"
    assert done.queue_position is None
    assert done.provider_request_id == "req-1"
    assert store.get_job(job_id) == done


def test_terminal_states_are_sticky(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = store.create_job(new_job(user)).job.job_id
    done = store.apply_status(job_id, JobStatus.COMPLETED, video_url="https://x/v.mp4")

    assert store.apply_status(job_id, JobStatus.PROCESSING) == done
    assert store.apply_status(job_id, JobStatus.PENDING, queue_position=1) == done
    assert store.apply_status(job_id, JobStatus.COMPLETED, video_url="https://x/other.mp4") == done
    assert store.fail_job(job_id, "too late") == done  # no refund for a completed job
    assert store.get_balance(user) == 12
    assert ledger_kinds(backend, user) == [(LedgerKind.CHARGE, -8), (LedgerKind.GRANT, 20)]


def test_apply_status_refuses_failed_and_unknown_jobs(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = store.create_job(new_job(user)).job.job_id

    with pytest.raises(ValueError):  # failing refunds: that is fail_job's job
        store.apply_status(job_id, JobStatus.FAILED)
    assert store.get_job(job_id).status is JobStatus.PENDING

    with pytest.raises(NotFoundError) as err:
        store.apply_status(str(uuid.uuid4()), JobStatus.PROCESSING)
    assert err.value.code == "job_not_found"


# --- fail_job ----------------------------------------------------------------------------


def test_fail_job_refunds_exactly_once(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = store.create_job(new_job(user, cost=8)).job.job_id
    store.apply_status(job_id, JobStatus.PROCESSING)

    failed = store.fail_job(job_id, "content policy violation")

    assert failed.status is JobStatus.FAILED
    assert failed.error == "content policy violation"
    assert failed.refunded_credits == failed.credits_used == 8
    assert failed.queue_position is None
    assert store.get_balance(user) == 20
    refund = store.list_ledger(user)[0]
    assert (refund.kind, refund.delta, refund.job_id, refund.reason, refund.operator) == (
        LedgerKind.REFUND,
        8,
        job_id,
        "job failed: content policy violation",
        SYSTEM_OPERATOR,
    )

    # Again (a retry, a second watcher): nothing moves, the first failure stays.
    assert store.fail_job(job_id, "another error") == failed
    assert store.apply_status(job_id, JobStatus.COMPLETED, video_url="https://x/v.mp4") == failed
    assert store.get_balance(user) == 20
    assert ledger_kinds(backend, user) == [
        (LedgerKind.REFUND, 8),
        (LedgerKind.CHARGE, -8),
        (LedgerKind.GRANT, 20),
    ]


def test_fail_job_of_an_unknown_job(backend: Backend) -> None:
    with pytest.raises(NotFoundError) as err:
        backend.store.fail_job(str(uuid.uuid4()), "boom")
    assert err.value.code == "job_not_found"


# --- refund_job --------------------------------------------------------------------------


def _completed_job(backend: Backend, user: str, cost: int = 8) -> str:
    job_id: str = backend.store.create_job(new_job(user, cost=cost)).job.job_id
    backend.store.apply_status(job_id, JobStatus.COMPLETED, video_url="https://x/v.mp4")
    return job_id


def test_refund_of_an_unknown_job(backend: Backend) -> None:
    with pytest.raises(NotFoundError) as err:
        backend.store.refund_job(str(uuid.uuid4()), None, "customer asked", "alice")
    assert err.value.code == "job_not_found"


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.PROCESSING])
def test_a_live_job_is_not_refundable(backend: Backend, status: JobStatus) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = store.create_job(new_job(user)).job.job_id
    store.apply_status(job_id, status)

    with pytest.raises(RefusedError) as err:
        store.refund_job(job_id, None, "customer asked", "alice")

    assert err.value.code == "job_not_refundable"
    assert store.get_balance(user) == 12


def test_refund_larger_than_the_credits_used_is_refused(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = _completed_job(backend, user, cost=8)

    with pytest.raises(RefusedError) as err:
        store.refund_job(job_id, 9, "customer asked", "alice")
    assert err.value.code == "refund_exceeds_credits"
    with pytest.raises(UsageError):
        store.refund_job(job_id, 0, "customer asked", "alice")
    assert store.get_balance(user) == 12
    assert store.get_job(job_id).refunded_credits == 0


def test_partial_refund_then_no_second_refund(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = _completed_job(backend, user, cost=8)

    outcome = store.refund_job(job_id, 3, "blurry video", "alice")

    assert isinstance(outcome, RefundOutcome)
    assert (outcome.refunded_now, outcome.refunded_credits, outcome.balance) == (True, 3, 15)
    assert (outcome.reason, outcome.operator) == ("blurry video", "alice")
    assert outcome.job.refunded_credits == 3
    assert outcome.job.status is JobStatus.COMPLETED
    assert store.get_balance(user) == 15
    refund = store.list_ledger(user)[0]
    assert (refund.kind, refund.delta, refund.job_id, refund.reason, refund.operator) == (
        LedgerKind.REFUND,
        3,
        job_id,
        "blurry video",
        "alice",
    )

    # At most one refund per job: a second, different refund is refused and names the
    # amount already refunded (exit 4)…
    for credits, reason, operator in [
        (5, "asked again", "bob"),
        (None, "blurry video", "alice"),
        (3, "blurry video", "bob"),
        (3, "other reason", "alice"),
    ]:
        with pytest.raises(RefusedError) as err:
            store.refund_job(job_id, credits, reason, operator)
        assert err.value.code == "already_refunded"
        assert "already refunded 3 of the 8 credits" in err.value.message
        assert err.value.exit_code == 4
    # …while the very same refund again (a retry after a lost answer) is a no-op that
    # reports the refund that happened.
    again = store.refund_job(job_id, 3, "blurry video", "alice")
    assert (again.refunded_now, again.refunded_credits, again.balance) == (False, 3, 15)
    assert (again.reason, again.operator, again.balance_before) == ("blurry video", "alice", 15)
    assert again.job == outcome.job
    assert store.get_balance(user) == 15
    assert store.get_job(job_id) == outcome.job
    assert ledger_kinds(backend, user)[0] == (LedgerKind.REFUND, 3)
    assert len(store.list_ledger(user, limit=100)) == 3


def test_full_refund_by_default(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = _completed_job(backend, user, cost=8)

    outcome = store.refund_job(job_id, None, "wrong prompt", "alice")

    assert (outcome.refunded_now, outcome.refunded_credits, outcome.balance) == (True, 8, 20)


def test_a_failed_job_was_already_refunded(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = store.create_job(new_job(user, cost=8)).job.job_id
    store.fail_job(job_id, "provider rejected")

    outcome = store.refund_job(job_id, None, "customer asked", "alice")

    assert (outcome.refunded_now, outcome.refunded_credits, outcome.balance) == (False, 8, 20)
    assert (outcome.reason, outcome.operator) == ("job failed: provider rejected", SYSTEM_OPERATOR)
    assert outcome.job.status is JobStatus.FAILED


# --- lists -------------------------------------------------------------------------------


def test_list_jobs_newest_first_per_user(backend: Backend) -> None:
    store = backend.store
    alice, bob = backend.new_user(100), backend.new_user(100)
    a1 = store.create_job(new_job(alice, prompt="one")).job.job_id
    b1 = store.create_job(new_job(bob, prompt="two")).job.job_id
    a2 = store.create_job(new_job(alice, prompt="three")).job.job_id

    assert [j.job_id for j in store.list_jobs(alice)] == [a2, a1]
    assert [j.job_id for j in store.list_jobs(alice, limit=1)] == [a2]
    assert [j.job_id for j in store.list_jobs(bob)] == [b1]
    everyone = [j.job_id for j in store.list_jobs(None, limit=100)]
    assert everyone[:3] == [a2, b1, a1]


# --- the same behaviour everywhere -------------------------------------------------------

U1 = "0a000000-0000-4000-8000-000000000001"
U2 = "0a000000-0000-4000-8000-000000000002"
GHOST = "0a000000-0000-4000-8000-0000000000ff"


def transcript(store: Any) -> list[Any]:
    """A scripted session; every answer normalised (ids numbered, timestamps dropped)."""
    ids: dict[str, str] = {}
    out: list[Any] = []

    def jid(value: str | None) -> str | None:
        if value is None:
            return None
        return ids.setdefault(value, f"job#{len(ids) + 1}")

    def norm(value: Any) -> Any:
        if isinstance(value, Job):
            data = value.to_json()
            data.update(
                job_id=jid(value.job_id),
                endpoint_id=value.endpoint_id,
                idempotency_key=value.idempotency_key,
                image_url=value.image_url,
                status_url=value.status_url,
                response_url=value.response_url,
                cancel_url=value.cancel_url,
                provider=value.provider,
                provider_origin=value.provider_origin,
                not_found_count=value.not_found_count,
                submitted=value.submitted_at is not None,
            )
            del data["created_at"], data["updated_at"]
            return data
        if isinstance(value, GrantOutcome | StrandedSweep):
            data = dataclasses.asdict(value)
            if "job_ids" in data:
                data["job_ids"] = [jid(j) for j in data["job_ids"]]
            return data
        if isinstance(value, CreateJobResult):
            return {"job": norm(value.job), "replayed": value.replayed, "balance": value.balance}
        if isinstance(value, RefundOutcome):
            return {
                "job": norm(value.job),
                "refunded_now": value.refunded_now,
                "refunded_credits": value.refunded_credits,
                "balance": value.balance,
                "reason": value.reason,
                "operator": value.operator,
                "dry_run": value.dry_run,
                "balance_before": value.balance_before,
            }
        if isinstance(value, LedgerEntry):
            return (value.user_id, jid(value.job_id), value.delta, value.kind.value, value.reason,
                    value.operator)  # fmt: skip
        if isinstance(value, IdempotencyRecord):
            return (value.key, value.user_id, value.fingerprint, jid(value.job_id), value.request)
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, Model | int | str | None):
            return value
        if isinstance(value, datetime):
            raise AssertionError("timestamps are not compared")
        raise AssertionError(f"unexpected answer {value!r}")

    def step(label: str, call: Callable[[], Any]) -> Any:
        try:
            value = call()
        except VideogenError as exc:
            out.append((label, type(exc).__name__, exc.code))
            return None
        except ValueError:
            out.append((label, "ValueError"))
            return None
        out.append((label, norm(value)))
        return value

    s = store
    step("grant u1", lambda: s.grant_credits(U1, 30, "welcome", "alice"))
    step("grant u2", lambda: s.grant_credits(U2, 5, "welcome", "alice"))
    step("grant zero", lambda: s.grant_credits(U1, 0, "nothing", "alice"))
    step("balances", lambda: [s.get_balance(U1), s.get_balance(U2), s.get_balance(GHOST)])
    a = new_job(U1, key="key-a", cost=8)
    ja = step("create a", lambda: s.create_job(a))
    a_id = ja.job.job_id
    step("replay a", lambda: s.create_job(a))
    step("reuse a", lambda: s.create_job(new_job(U1, key="key-a", cost=8, prompt="x")))
    step("reuse a by u2", lambda: s.create_job(new_job(U2, key="key-a", cost=8)))
    step("ghost user", lambda: s.create_job(new_job(GHOST, key="key-g")))
    step("no model", lambda: s.create_job(new_job(U1, key="key-m", model="nope")))
    step("too poor", lambda: s.create_job(new_job(U2, key="key-p", cost=8)))
    step("submit a", lambda: s.record_submission(a_id, "fal-ai/veo3.1", submission("r1", 2), FAL))
    step(
        "submit a again", lambda: s.record_submission(a_id, "fal-ai/veo3.1", submission("r2"), FAL)
    )
    step("queue a", lambda: s.apply_status(a_id, JobStatus.PENDING, queue_position=1))
    step("run a", lambda: s.apply_status(a_id, JobStatus.PROCESSING))
    step("requeue a", lambda: s.apply_status(a_id, JobStatus.PENDING, queue_position=0))
    step("refund live a", lambda: s.refund_job(a_id, None, "early", "alice"))
    step("finish a", lambda: s.apply_status(a_id, JobStatus.COMPLETED, video_url="https://v"))
    step("run a late", lambda: s.apply_status(a_id, JobStatus.PROCESSING))
    step("fail a late", lambda: s.fail_job(a_id, "late"))
    step("refund a 100", lambda: s.refund_job(a_id, 100, "too much", "alice"))
    step("refund a 3", lambda: s.refund_job(a_id, 3, "blurry", "alice"))
    step("refund a again", lambda: s.refund_job(a_id, None, "again", "bob"))
    b = step("create b", lambda: s.create_job(new_job(U1, key="key-b", cost=4)))
    b_id = b.job.job_id
    step("fail b", lambda: s.fail_job(b_id, "provider rejected"))
    step("fail b again", lambda: s.fail_job(b_id, "again"))
    step("submit b", lambda: s.record_submission(b_id, "fal-ai/veo3.1", submission("r3"), FAL))
    step("finish b", lambda: s.apply_status(b_id, JobStatus.COMPLETED, video_url="https://v"))
    step("refund b", lambda: s.refund_job(b_id, None, "asked", "alice"))
    c = step("create c", lambda: s.create_job(new_job(U1, key="key-c", cost=12)))
    c_id = c.job.job_id
    step("finish c", lambda: s.apply_status(c_id, JobStatus.COMPLETED, video_url="https://c"))
    step("dry refund c", lambda: s.refund_job(c_id, None, "wrong prompt", "carol", dry_run=True))
    step("refund c", lambda: s.refund_job(c_id, None, "wrong prompt", "carol"))
    step("dry refund c again", lambda: s.refund_job(c_id, 2, "again", "dave", dry_run=True))
    step("dry refund a again", lambda: s.refund_job(a_id, 5, "more", "bob", dry_run=True))
    step("refund a same again", lambda: s.refund_job(a_id, 3, "blurry", "alice"))
    step("grant key", lambda: s.grant_credits(U2, 7, "ci", "ci", idempotency_key="fund-1"))
    step("grant key again", lambda: s.grant_credits(U2, 9, "x", "bob", idempotency_key="fund-1"))
    step("grant key by u1", lambda: s.grant_credits(U1, 9, "x", "bob", idempotency_key="fund-1"))
    step("grant key 2", lambda: s.grant_credits(U2, 1, "ci", "ci", idempotency_key="fund-2"))
    step("grant empty key", lambda: s.grant_credits(U2, 1, "ci", "ci", idempotency_key=""))
    step("grant long key", lambda: s.grant_credits(U2, 1, "ci", "ci", idempotency_key="k" * 256))
    d = step("create d", lambda: s.create_job(new_job(U2, key="key-d", cost=4)))
    d_id = d.job.job_id
    step("submit d", lambda: s.record_submission(d_id, "fal-ai/veo3.1", submission("r4"), SIM))
    step("404 d", lambda: s.note_not_found(d_id))
    step("404 d again", lambda: s.note_not_found(d_id))
    step("queue d", lambda: s.apply_status(d_id, JobStatus.PENDING, queue_position=0))
    step("404 d later", lambda: s.note_not_found(d_id))
    step("run d", lambda: s.apply_status(d_id, JobStatus.PROCESSING))
    step("404 unknown", lambda: s.note_not_found(GHOST))
    e = step("create e", lambda: s.create_job(new_job(U2, key="key-e", cost=4)))
    e_id = e.job.job_id
    step("unfinished", lambda: s.list_unfinished_jobs(0, 10))
    step("unfinished 1", lambda: s.list_unfinished_jobs(0, 1))
    step("unfinished old", lambda: s.list_unfinished_jobs(3600, 10))
    step("unfinished nan", lambda: s.list_unfinished_jobs(float("nan"), 10))
    step("sweep young", lambda: s.sweep_stranded(3600))
    step("sweep dry", lambda: s.sweep_stranded(0, dry_run=True))
    step("sweep", lambda: s.sweep_stranded(0))
    step("sweep again", lambda: s.sweep_stranded(0))
    step("sweep negative", lambda: s.sweep_stranded(-1))
    step("get e", lambda: s.get_job(e_id))
    step("404 e", lambda: s.note_not_found(e_id))
    step("finish d", lambda: s.apply_status(d_id, JobStatus.COMPLETED, video_url="https://d"))
    step("404 d done", lambda: s.note_not_found(d_id))
    step("get a", lambda: s.get_job(a_id))
    step("get bad", lambda: s.get_job("not-a-uuid"))
    step("get unknown", lambda: s.get_job(GHOST))
    step("jobs u1", lambda: s.list_jobs(U1))
    step("jobs u1 1", lambda: s.list_jobs(U1, limit=1))
    step("jobs u2", lambda: s.list_jobs(U2))
    step("ledger u1", lambda: s.list_ledger(U1))
    step("ledger u1 2", lambda: s.list_ledger(U1, limit=2))
    step("ledger ghost", lambda: s.list_ledger(GHOST))
    step("key a", lambda: s.get_idempotency_record("key-a"))
    step("key p", lambda: s.get_idempotency_record("key-p"))
    step("model", lambda: s.get_model("veo3.1"))
    step("model by id", lambda: s.get_model(SEED_MODELS[0].id))
    step("no model", lambda: s.get_model("nope"))
    step("models", lambda: s.list_models())
    step("status unknown", lambda: s.apply_status(GHOST, JobStatus.PROCESSING))
    step("fail unknown", lambda: s.fail_job(GHOST, "x"))
    step("submit unknown", lambda: s.record_submission(GHOST, "e", submission(), FAL))
    step("refund unknown", lambda: s.refund_job(GHOST, None, "x", "y"))
    step("apply failed", lambda: s.apply_status(c_id, JobStatus.FAILED))
    step("final balances", lambda: [s.get_balance(U1), s.get_balance(U2)])
    step("final ledger u2", lambda: s.list_ledger(U2))
    return out


@pytest.mark.postgres
def test_every_store_gives_the_same_answers(
    backend_factory: Callable[[str], Backend],
) -> None:
    transcripts = {
        kind: transcript(backend_factory(kind).store) for kind in ("sqlite", "postgres", "supabase")
    }
    reference = transcripts["sqlite"]
    assert len(reference) > 50
    for kind in ("postgres", "supabase"):
        for expected, got in zip(reference, transcripts[kind], strict=True):
            assert got == expected, f"{kind} differs from sqlite at step {expected[0]!r}"


# --- provider identity and "not found" answers -------------------------------------------


def _submitted_job(backend: Backend, user: str, provider: ProviderIdentity = FAL) -> str:
    job_id: str = backend.store.create_job(new_job(user)).job.job_id
    backend.store.record_submission(job_id, "fal-ai/veo3.1", submission("req-1", 2), provider)
    return job_id


def test_record_submission_stores_the_provider(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job = store.create_job(new_job(user)).job
    assert (job.provider, job.provider_origin, job.not_found_count) == (None, None, 0)
    assert job.submitted_at is None and job.provider_identity is None

    recorded = store.record_submission(job.job_id, "fal-ai/veo3.1", submission("req-1"), SIM)

    assert (recorded.provider, recorded.provider_origin) == (SIM.name, SIM.origin)
    assert recorded.provider_identity == SIM
    assert recorded.submitted_at is not None and recorded.submitted_at.tzinfo is not None
    assert store.get_job(job.job_id) == recorded
    # The provider that took the job stays: a later submission elsewhere changes nothing.
    assert store.record_submission(job.job_id, "fal-ai/veo3.1", submission("r2"), FAL) == recorded

    other = store.create_job(new_job(user)).job
    for bad in (ProviderIdentity("", "x"), ProviderIdentity("fal", "")):
        with pytest.raises(UsageError):
            store.record_submission(other.job_id, "fal-ai/veo3.1", submission("r3"), bad)
    assert store.get_job(other.job_id) == other


def test_not_found_answers_are_counted_and_any_other_answer_resets_them(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = _submitted_job(backend, user)

    first = store.note_not_found(job_id)
    second = store.note_not_found(job_id)

    assert (first.not_found_count, second.not_found_count) == (1, 2)
    assert second.status is JobStatus.PENDING and second.queue_position == 2
    assert store.get_job(job_id) == second
    # No money moves on a "not found".
    assert store.get_balance(user) == 12
    assert ledger_kinds(backend, user) == [(LedgerKind.CHARGE, -8), (LedgerKind.GRANT, 20)]

    # The same status and queue position as stored: the reset alone is a real change.
    reset = store.apply_status(job_id, JobStatus.PENDING, queue_position=2)
    assert (reset.status, reset.queue_position, reset.not_found_count) == (JobStatus.PENDING, 2, 0)
    assert store.get_job(job_id) == reset

    assert store.note_not_found(job_id).not_found_count == 1
    assert store.apply_status(job_id, JobStatus.PROCESSING).not_found_count == 0
    assert store.note_not_found(job_id).not_found_count == 1
    done = store.apply_status(job_id, JobStatus.COMPLETED, video_url="https://x/v.mp4")
    assert done.not_found_count == 0
    # A terminal job is returned unchanged.
    assert store.note_not_found(job_id) == done
    failed_id = store.create_job(new_job(user, cost=4)).job.job_id
    failed = store.fail_job(failed_id, "boom")
    assert store.note_not_found(failed_id) == failed

    with pytest.raises(NotFoundError) as err:
        store.note_not_found(str(uuid.uuid4()))
    assert err.value.code == "job_not_found"


def _write_stamp(backend: Backend, job_id: str, observer: Any) -> Any:
    """Changes whenever anything is written: the row version (Postgres) or the file's
    data_version as seen by another connection (SQLite)."""
    if backend.path is not None:
        return observer.execute("pragma data_version").fetchone()[0]
    return backend.execute("select xmin::text from public.video_jobs where job_id = %s",
                           (job_id,))  # fmt: skip


def test_apply_status_writes_nothing_when_nothing_changed(backend: Backend) -> None:
    import sqlite3

    store = backend.store
    user = backend.new_user(20)
    job_id = _submitted_job(backend, user)
    observer = sqlite3.connect(str(backend.path)) if backend.path else None
    try:
        before = store.apply_status(job_id, JobStatus.PENDING, queue_position=1)
        stamp = _write_stamp(backend, job_id, observer)

        for _ in range(3):  # polling the same answer again and again
            assert store.apply_status(job_id, JobStatus.PENDING, queue_position=1) == before
        assert _write_stamp(backend, job_id, observer) == stamp
        assert store.get_job(job_id) == before

        # The stamp does see a real change.
        running = store.apply_status(job_id, JobStatus.PROCESSING)
        assert _write_stamp(backend, job_id, observer) != stamp
        stamp = _write_stamp(backend, job_id, observer)
        assert store.apply_status(job_id, JobStatus.PROCESSING) == running
        assert _write_stamp(backend, job_id, observer) == stamp
    finally:
        if observer is not None:
            observer.close()


# --- grant keys --------------------------------------------------------------------------


def test_a_grant_key_never_grants_twice(backend: Backend) -> None:
    store = backend.store
    user, stranger = str(uuid.uuid4()), str(uuid.uuid4())

    first = store.grant_credits(user, 10, "ci funding", "ci", idempotency_key="ci-run-1")

    assert first == GrantOutcome(user, 10, True, 10, "ci funding", "ci", "ci-run-1")
    # The same key again, whatever the other arguments: nothing moves, the stored grant.
    again = store.grant_credits(user, 25, "other reason", "bob", idempotency_key="ci-run-1")
    assert again == GrantOutcome(user, 10, False, 10, "ci funding", "ci", "ci-run-1")
    foreign = store.grant_credits(stranger, 5, "x", "mallory", idempotency_key="ci-run-1")
    assert foreign == GrantOutcome(user, 10, False, 10, "ci funding", "ci", "ci-run-1")
    assert store.get_balance(stranger) is None  # no account was opened for the stranger

    # Grants without a key are new each time; the replay reports the current balance.
    assert store.grant_credits(user, 3, "top-up", "bob").balance == 13
    assert store.grant_credits(user, 1, "x", "y", idempotency_key="ci-run-1").balance == 13
    other = store.grant_credits(user, 2, "ci funding", "ci", idempotency_key="ci-run-2")
    assert (other.granted_now, other.granted, other.balance) == (True, 2, 15)
    assert [(e.kind, e.delta) for e in store.list_ledger(user)] == [
        (LedgerKind.GRANT, 2),
        (LedgerKind.GRANT, 3),
        (LedgerKind.GRANT, 10),
    ]

    # Grant keys are their own namespace: generate's keys do not collide with them.
    job = store.create_job(new_job(user, key="shared-key", cost=4)).job
    shared = store.grant_credits(user, 4, "refill", "ci", idempotency_key="shared-key")
    assert (shared.granted_now, shared.balance) == (True, 15)
    assert store.get_job(job.job_id) == job

    for bad in ("", "k" * 256):
        with pytest.raises(UsageError):
            store.grant_credits(user, 5, "x", "y", idempotency_key=bad)
    assert store.get_balance(user) == 15


def test_concurrent_grants_with_one_key_grant_once(backend: Backend) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    assert backend.open_another is not None
    user = str(uuid.uuid4())
    stores = [backend.open_another() for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def grant(store: Any) -> GrantOutcome:
        barrier.wait()
        outcome: GrantOutcome = store.grant_credits(user, 7, "ci", "ci", idempotency_key="race")
        return outcome

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            outcomes = list(pool.map(grant, stores))
    finally:
        for store in stores:
            store.close()

    assert sorted(o.granted_now for o in outcomes) == [False, False, False, True]
    assert {(o.user_id, o.granted, o.balance) for o in outcomes} == {(user, 7, 7)}
    assert backend.store.get_balance(user) == 7
    assert ledger_kinds(backend, user) == [(LedgerKind.GRANT, 7)]


# --- refund honesty ----------------------------------------------------------------------


def test_a_dry_run_says_what_would_happen_and_writes_nothing(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    job_id = _completed_job(backend, user, cost=8)
    job = store.get_job(job_id)

    dry = store.refund_job(job_id, 3, "blurry video", "alice", dry_run=True)

    assert (dry.dry_run, dry.refunded_now, dry.refunded_credits) == (True, True, 3)
    assert (dry.balance_before, dry.balance) == (12, 15)
    assert (dry.reason, dry.operator) == ("blurry video", "alice")
    assert dry.job.refunded_credits == 3 and dry.job.job_id == job_id
    assert store.get_job(job_id) == job
    assert store.get_balance(user) == 12
    assert ledger_kinds(backend, user) == [(LedgerKind.CHARGE, -8), (LedgerKind.GRANT, 20)]

    # A dry run makes every check.
    with pytest.raises(RefusedError) as too_much:
        store.refund_job(job_id, 9, "x", "alice", dry_run=True)
    assert too_much.value.code == "refund_exceeds_credits"
    live = store.create_job(new_job(user, cost=4)).job.job_id
    with pytest.raises(RefusedError) as running:
        store.refund_job(live, None, "x", "alice", dry_run=True)
    assert running.value.code == "job_not_refundable"

    real = store.refund_job(job_id, 3, "blurry video", "alice")
    assert (real.dry_run, real.refunded_now, real.balance_before, real.balance) == (
        False,
        True,
        8,
        11,
    )
    # After a partial refund: another one is refused even as a dry run…
    with pytest.raises(RefusedError) as second:
        store.refund_job(job_id, 2, "more", "bob", dry_run=True)
    assert second.value.code == "already_refunded"
    assert "already refunded 3" in second.value.message
    # …and the same refund again is the no-op it would be for real.
    same = store.refund_job(job_id, 3, "blurry video", "alice", dry_run=True)
    assert (same.dry_run, same.refunded_now, same.refunded_credits) == (True, False, 3)
    assert (same.balance_before, same.balance) == (11, 11)
    assert store.get_balance(user) == 11


def test_a_dry_run_on_a_refunded_job_shows_nothing_moving(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(20)
    failed = store.create_job(new_job(user, cost=8)).job.job_id
    store.fail_job(failed, "provider rejected")  # the automatic refund is a full refund

    for dry_run in (True, False):
        for credits in (None, 3):
            outcome = store.refund_job(failed, credits, "customer asked", "alice", dry_run=dry_run)
            assert (outcome.dry_run, outcome.refunded_now, outcome.refunded_credits) == (
                dry_run,
                False,
                8,
            )
            assert (outcome.balance_before, outcome.balance) == (20, 20)
            assert (outcome.reason, outcome.operator) == (
                "job failed: provider rejected",
                SYSTEM_OPERATOR,
            )

    done = _completed_job(backend, user, cost=8)
    store.refund_job(done, None, "wrong prompt", "carol")
    dry = store.refund_job(done, 2, "again", "dave", dry_run=True)
    assert (dry.refunded_now, dry.refunded_credits, dry.balance) == (False, 8, 20)
    assert (dry.reason, dry.operator) == ("wrong prompt", "carol")
    assert store.get_balance(user) == 20


# --- reconciliation ----------------------------------------------------------------------


def test_list_unfinished_jobs_oldest_first(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(100)
    stranded = store.create_job(new_job(user, prompt="stranded")).job.job_id
    running = _submitted_job(backend, user)
    store.apply_status(running, JobStatus.PROCESSING)
    done = _completed_job(backend, user)
    fresh = store.create_job(new_job(user, prompt="fresh")).job.job_id
    backend.age_job(stranded, 300)
    backend.age_job(running, 200)
    backend.age_job(done, 400)

    def ids(older_than: float, limit: int = 10) -> list[str]:
        return [j.job_id for j in store.list_unfinished_jobs(older_than, limit)]

    assert ids(60) == [stranded, running]
    assert ids(0) == [stranded, running, fresh]
    assert ids(250) == [stranded]
    assert ids(60, limit=1) == [stranded]
    assert ids(0, limit=0) == []
    assert ids(10_000) == []
    listed = store.list_unfinished_jobs(0, 10)
    assert listed[1] == store.get_job(running)
    for bad in (-1.0, float("nan"), float("inf"), 1e300):
        with pytest.raises(UsageError):
            store.list_unfinished_jobs(bad, 10)


def test_sweep_stranded_fails_and_refunds_never_submitted_jobs_once(backend: Backend) -> None:
    store = backend.store
    user = backend.new_user(100)
    older = store.create_job(new_job(user, cost=4, prompt="older")).job.job_id
    old = store.create_job(new_job(user, cost=8, prompt="old")).job.job_id
    young = store.create_job(new_job(user, cost=8, prompt="young")).job.job_id
    submitted = _submitted_job(backend, user)
    done = _completed_job(backend, user)
    for job_id, age in ((older, 900), (old, 700), (young, 60), (submitted, 800), (done, 800)):
        backend.age_job(job_id, age)
    balance = store.get_balance(user)
    assert balance == 100 - 4 - 8 - 8 - 8 - 8

    dry = store.sweep_stranded(600, dry_run=True)

    assert dry == StrandedSweep(2, 12, (older, old), dry_run=True)
    assert store.get_balance(user) == balance
    assert store.get_job(old).status is JobStatus.PENDING

    swept = store.sweep_stranded(600)

    assert swept == StrandedSweep(2, 12, (older, old), dry_run=False)
    assert store.get_balance(user) == balance + 12
    for job_id, cost in ((older, 4), (old, 8)):
        job = store.get_job(job_id)
        assert (job.status, job.error, job.refunded_credits) == (
            JobStatus.FAILED,
            NEVER_SUBMITTED,
            cost,
        )
        refund = [e for e in store.list_ledger(user, 100) if e.job_id == job_id and e.delta > 0]
        assert [(e.kind, e.delta, e.reason, e.operator) for e in refund] == [
            (LedgerKind.REFUND, cost, f"job failed: {NEVER_SUBMITTED}", SYSTEM_OPERATOR)
        ]
    for job_id in (young, submitted):
        assert store.get_job(job_id).status is JobStatus.PENDING
    assert store.sweep_stranded(600) == StrandedSweep(0, 0, (), dry_run=False)

    # A submission that arrives after the sweep is not recorded (the core cancels it).
    late = store.record_submission(old, "fal-ai/veo3.1", submission("late"), FAL)
    assert (late.status, late.provider_request_id, late.provider) == (JobStatus.FAILED, None, None)

    # limit: the oldest first.
    more = [store.create_job(new_job(user, cost=1, prompt=f"m{i}")).job.job_id for i in range(3)]
    for i, job_id in enumerate(more):
        backend.age_job(job_id, 1000 - i)
    assert store.sweep_stranded(600, limit=2).job_ids == tuple(more[:2])
    assert store.sweep_stranded(0).job_ids == (more[2], young)
    for bad in (-1.0, float("nan"), float("inf"), 1e300):
        with pytest.raises(UsageError):
            store.sweep_stranded(bad)


def test_two_sweepers_at_once_refund_each_job_once(backend: Backend) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    assert backend.open_another is not None
    store = backend.store
    user = backend.new_user(100)
    stranded = [store.create_job(new_job(user, cost=2, prompt=f"s{i}")).job.job_id
                for i in range(20)]  # fmt: skip
    for job_id in stranded:
        backend.age_job(job_id, 3600)
    sweepers = [backend.open_another() for _ in range(2)]
    barrier = threading.Barrier(len(sweepers))

    def sweep(sweeper: Any) -> StrandedSweep:
        barrier.wait()
        result: StrandedSweep = sweeper.sweep_stranded(600)
        return result

    try:
        with ThreadPoolExecutor(len(sweepers)) as pool:
            results = list(pool.map(sweep, sweepers))
    finally:
        for sweeper in sweepers:
            sweeper.close()

    ids = [job_id for r in results for job_id in r.job_ids]
    assert sorted(ids) == sorted(stranded)  # each job swept by exactly one of them
    assert sum(r.swept for r in results) == 20
    assert sum(r.refunded_credits for r in results) == 40
    assert store.get_balance(user) == 100


# --- the same raw answers everywhere -----------------------------------------------------

_UUID_IN_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
# Ids the script chooses (and the seed catalog's): kept as they are.
_FIXED_IDS = {U1, U2, GHOST, *(m.id for m in SEED_MODELS)}


class RawNormaliser:
    """Raw JSON answers made comparable across stores without hiding any rule.

    Generated ids (job ids, also inside texts, and ledger ids) are numbered in order of
    appearance; each distinct timestamp becomes a token T1, T2... in order of first
    appearance, so "created_at == updated_at" and "updated_at unchanged" are compared
    (equal values, equal tokens). Objects are walked in key order (jsonb orders its keys
    its own way). Every timestamp must have the one format of videogen_private.ts.
    """

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.ledger_ids: dict[int, str] = {}
        self.times: dict[str, str] = {}

    def text(self, value: str) -> str:
        if _TS.fullmatch(value):
            return self.times.setdefault(value, f"T{len(self.times) + 1}")
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", value), f"timestamp format: {value}"
        return _UUID_IN_TEXT.sub(self._id, value)

    def _id(self, match: re.Match[str]) -> str:
        value = match.group(0)
        if value in _FIXED_IDS:
            return value
        return self.ids.setdefault(value, f"id#{len(self.ids) + 1}")

    def __call__(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: self(value[k], k) for k in sorted(value)}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if key in ("id", "ledger_id") and isinstance(value, int) and not isinstance(value, bool):
            return self.ledger_ids.setdefault(value, f"ledger#{len(self.ledger_ids) + 1}")
        assert value is None or isinstance(value, bool | int), f"unexpected {value!r}"
        return value


def raw_transcript(store: Any) -> list[Any]:
    """A scripted session of raw calls (``store._call``) of every videogen_* function,
    with refusals and dry runs; each answer, or error, normalised by RawNormaliser."""
    norm = RawNormaliser()
    out: list[Any] = []
    called: set[str] = set()

    def call(label: str, fn: str, **args: Any) -> Any:
        called.add(fn)
        try:
            answer = store._call(fn, args)
        except VideogenError as exc:
            out.append((label, "error", type(exc).__name__, exc.exit_code, exc.code,
                        norm.text(exc.message), exc.hint and norm.text(exc.hint)))  # fmt: skip
            return None
        out.append((label, norm(answer)))
        return answer

    def create(label: str, user: str, key: str | None, **extra: Any) -> Any:
        args: dict[str, Any] = {
            "p_user_id": user,
            "p_idempotency_key": key,
            "p_fingerprint": f"fp-{key}",
            "p_model": "veo3.1",
            "p_prompt": f"prompt {key}",
            "p_image_url": None,
            "p_settings": dict(SETTINGS),
            "p_cost": 8,
            "p_request": {"prompt": f"prompt {key}", "settings": SETTINGS},
        }
        args.update(extra)
        return call(label, "videogen_create_job", **args)

    def submit(label: str, job_id: str | None, request_id: str = "r1", **extra: Any) -> Any:
        base = f"https://queue.fal.run/fal-ai/veo3.1/requests/{request_id}"
        args: dict[str, Any] = {
            "p_job_id": job_id,
            "p_endpoint_id": "fal-ai/veo3.1",
            "p_request_id": request_id,
            "p_status_url": f"{base}/status",
            "p_response_url": base,
            "p_cancel_url": f"{base}/cancel",
            "p_queue_position": 2,
            "p_provider": FAL.name,
            "p_provider_origin": FAL.origin,
        }
        args.update(extra)
        return call(label, "videogen_record_submission", **args)

    def status(label: str, job_id: str | None, status: str | None, **extra: Any) -> Any:
        return call(label, "videogen_apply_status", p_job_id=job_id, p_status=status,
                    p_queue_position=extra.get("queue"), p_video_url=extra.get("video"),
                    p_thumbnail_url=extra.get("thumb"))  # fmt: skip

    def refund(label: str, job_id: str | None, credits: int | None, reason: str | None,
               operator: str | None, dry_run: bool = False) -> Any:  # fmt: skip
        return call(label, "videogen_refund_job", p_job_id=job_id, p_credits=credits,
                    p_reason=reason, p_operator=operator, p_dry_run=dry_run)  # fmt: skip

    veo = next(m for m in SEED_MODELS if m.slug == "veo3.1")
    # Reads of the catalog.
    call("model", "videogen_get_model", p_slug_or_id="veo3.1")
    call("model by id", "videogen_get_model", p_slug_or_id=veo.id)
    call("model by upper id", "videogen_get_model", p_slug_or_id=veo.id.upper())
    call("no model", "videogen_get_model", p_slug_or_id="nope")
    call("models", "videogen_list_models")
    # Grants.
    call("grant u1", "videogen_grant_credits", p_user_id=U1, p_credits=40, p_reason="welcome",
         p_operator="alice")  # fmt: skip
    call("grant u1 more", "videogen_grant_credits", p_user_id=U1, p_credits=2, p_reason=None,
         p_operator=None)  # fmt: skip
    call("grant u2", "videogen_grant_credits", p_user_id=U2, p_credits=5, p_reason="welcome",
         p_operator="alice", p_idempotency_key=None)  # fmt: skip
    for label, user, credits, key in [
        ("grant zero", U1, 0, None),
        ("grant null credits", U1, None, None),
        ("grant bad user", "o'brien", 5, None),
        ("grant backslash user", "a\\b", 5, None),
        ("grant null user", None, 5, None),
        ("grant key", U2, 7, "fund-1"),
        ("grant key again", U2, 9, "fund-1"),
        ("grant key by u1", U1, 9, "fund-1"),
        ("grant empty key", U2, 1, ""),
        ("grant long key", U2, 1, "k" * 256),
        ("grant longest key", U2, 1, "k" * 255),
    ]:
        call(label, "videogen_grant_credits", p_user_id=user, p_credits=credits,
             p_reason="ci", p_operator="ci", p_idempotency_key=key)  # fmt: skip
    call("balance u1", "videogen_get_balance", p_user_id=U1)
    call("balance upper", "videogen_get_balance", p_user_id=U1.upper())
    call("balance ghost", "videogen_get_balance", p_user_id=GHOST)
    call("balance bad", "videogen_get_balance", p_user_id="bad")
    # create_job, and every refusal of it.
    a = create("create a", U1, "key-a")
    a_id = a["job"]["job_id"]
    create("replay a", U1, "key-a")
    create("reuse a", U1, "key-a", p_fingerprint="other")
    create("ghost user", GHOST, "key-g")
    create("bad user", "bad", "key-bu")
    create("no model", U1, "key-m", p_model="nope")
    create("null model", U1, "key-nm", p_model=None)
    create("model by id", U1, "key-mi", p_model=veo.id, p_cost=4)
    create("too poor", U2, "key-p", p_cost=100)
    create("empty key", U1, "")
    create("null key", U1, None)
    create("long key", U1, "k" * 256)
    create("zero cost", U1, "key-z", p_cost=0)
    create("no fingerprint", U1, "key-f", p_fingerprint="")
    create("null prompt", U1, "key-np", p_prompt=None)
    create("null settings", U2, "key-ns", p_settings=None, p_request=None, p_cost=1)
    # Submissions.
    submit("submit a", a_id)
    submit("submit a again", a_id, "r2")
    submit("submit unknown", GHOST)
    submit("submit bad id", "bad")
    submit("submit no request", a_id, "")
    submit("submit null request", a_id, p_request_id=None)
    submit("submit negative queue", a_id, p_queue_position=-1)
    submit("submit no provider", a_id, p_provider="")
    submit("submit no origin", a_id, p_provider_origin=None)
    # Status changes: only a real change writes (updated_at tokens show it).
    status("queue a", a_id, "pending", queue=1)
    status("queue a same", a_id, "pending", queue=1)
    call("404 a", "videogen_note_not_found", p_job_id=a_id)
    status("queue a after 404", a_id, "pending", queue=1)
    status("run a", a_id, "processing", queue=5)
    status("run a same", a_id, "processing")
    status("a failed", a_id, "failed")
    status("a null status", a_id, None)
    status("a odd status", a_id, "it's done")
    status("a negative queue", a_id, "pending", queue=-1)
    status("unknown status", GHOST, "processing")
    status("bad id status", "bad", "processing")
    refund("refund live a", a_id, None, "early", "alice")
    refund("dry refund live a", a_id, None, "early", "alice", True)
    status("finish a", a_id, "completed", video="https://v/a.mp4", thumb="https://v/a.jpg")
    status("run a late", a_id, "processing")
    call("404 a done", "videogen_note_not_found", p_job_id=a_id)
    call("fail a late", "videogen_fail_job", p_job_id=a_id, p_error="late")
    # Refunds.
    refund("refund a 0", a_id, 0, "zero", "alice")
    refund("refund a 100", a_id, 100, "too much", "alice")
    refund("dry refund a 3", a_id, 3, "blurry", "alice", True)
    refund("refund a 3", a_id, 3, "blurry", "alice")
    refund("refund a other", a_id, 2, "again", "bob")
    refund("dry refund a other", a_id, 2, "again", "bob", True)
    refund("refund a same", a_id, 3, "blurry", "alice")
    refund("refund a null reason", a_id, 3, None, "alice")
    refund("refund unknown", GHOST, None, "x", "y")
    refund("refund bad id", "bad", None, "x", "y")
    b = create("create b", U1, "key-b", p_cost=4)
    b_id = b["job"]["job_id"]
    call("fail b", "videogen_fail_job", p_job_id=b_id, p_error=None)
    call("fail b again", "videogen_fail_job", p_job_id=b_id, p_error="again")
    call("fail unknown", "videogen_fail_job", p_job_id=GHOST, p_error="x")
    refund("refund b", b_id, None, "asked", "alice")
    refund("refund b partly", b_id, 1, "asked", "alice", True)
    c = create("create c", U1, "key-c", p_cost=12)
    c_id = c["job"]["job_id"]
    status("finish c", c_id, "completed", video="https://v/c.mp4")
    refund("dry refund c", c_id, None, "wrong prompt", "carol", True)
    refund("refund c", c_id, None, "wrong prompt", "carol")
    refund("dry refund c again", c_id, 2, "again", "dave", True)
    # "Not found" answers from the provider.
    d = create("create d", U2, "key-d", p_cost=4)
    d_id = d["job"]["job_id"]
    submit("submit d", d_id, "r4", p_provider=SIM.name, p_provider_origin=SIM.origin,
           p_queue_position=None)  # fmt: skip
    call("404 d", "videogen_note_not_found", p_job_id=d_id)
    call("404 d again", "videogen_note_not_found", p_job_id=d_id)
    status("run d", d_id, "processing")
    call("404 unknown", "videogen_note_not_found", p_job_id=GHOST)
    call("404 bad id", "videogen_note_not_found", p_job_id="bad")
    # Reconciliation.
    e = create("create e", U2, "key-e", p_cost=1)
    e_id = e["job"]["job_id"]
    create("create f", U2, "key-f2", p_cost=1)
    for label, age, limit in [
        ("unfinished", 0, 10),
        ("unfinished 1", 0.0, 1),
        ("unfinished 0", 0, 0),
        ("unfinished old", 3600.5, 10),
        ("unfinished negative", -1, 10),
        ("unfinished null", None, 10),
        ("unfinished negative limit", 0, -1),
        ("unfinished null limit", 0, None),
    ]:
        call(label, "videogen_list_unfinished_jobs", p_older_than_seconds=age, p_limit=limit)
    call("sweep default", "videogen_sweep_stranded")
    call("sweep young", "videogen_sweep_stranded", grace="1 hour", p_limit=None,
         p_dry_run=False)  # fmt: skip
    call("sweep dry", "videogen_sweep_stranded", grace="0.000000 seconds", p_limit=None,
         p_dry_run=True)  # fmt: skip
    call("sweep negative", "videogen_sweep_stranded", grace="-1 seconds", p_limit=None,
         p_dry_run=False)  # fmt: skip
    call("sweep negative limit", "videogen_sweep_stranded", grace="0 seconds", p_limit=-1,
         p_dry_run=False)  # fmt: skip
    call("sweep 1", "videogen_sweep_stranded", grace="0 seconds", p_limit=1, p_dry_run=False)
    call("sweep", "videogen_sweep_stranded", grace="0.000000 seconds", p_limit=None,
         p_dry_run=False)  # fmt: skip
    call("sweep again", "videogen_sweep_stranded", grace="0 seconds", p_limit=None,
         p_dry_run=None)  # fmt: skip
    submit("submit e late", e_id, "r5")
    # Reads of everything that happened.
    for label, job_id in [("get a", a_id), ("get e", e_id), ("get bad", "bad"),
                          ("get unknown", GHOST), ("get upper", d_id.upper())]:  # fmt: skip
        call(label, "videogen_get_job", p_job_id=job_id)
    for label, user, limit in [
        ("jobs u1", U1, 20),
        ("jobs u1 1", U1, 1),
        ("jobs u2", U2, 20),
        ("jobs all", None, 100),
        ("jobs empty user", "", 100),
        ("jobs bad user", "bad", 100),
        ("jobs negative limit", U1, -1),
        ("jobs null limit", U1, None),
    ]:
        call(label, "videogen_list_jobs", p_user_id=user, p_limit=limit)
    for label, user, limit in [
        ("ledger u1", U1, 50),
        ("ledger u1 2", U1, 2),
        ("ledger u2", U2, 50),
        ("ledger ghost", GHOST, 50),
        ("ledger bad", "bad", 50),
        ("ledger negative limit", U1, -1),
    ]:
        call(label, "videogen_list_ledger", p_user_id=user, p_limit=limit)
    for key in ("key-a", "key-ns", "key-p", "never-used"):
        call(f"key {key}", "videogen_get_idempotency_record", p_key=key)
    call("final balances", "videogen_get_balance", p_user_id=U2)

    functions = set(re.findall(r"function public\.(videogen_\w+)\(", functions_sql()))
    assert called == functions, f"not called: {sorted(functions - called)}"
    return out


@pytest.mark.postgres
def test_every_store_gives_the_same_raw_answers(
    backend_factory: Callable[[str], Backend],
) -> None:
    """The sandbox's twin answers exactly what the SQL functions answer, call by call:
    the same JSON (timestamps as tokens: which ones are equal is compared), the same
    refusals (error class, code, message, hint)."""
    transcripts = {
        kind: raw_transcript(backend_factory(kind).store)
        for kind in ("sqlite", "postgres", "supabase")
    }
    reference = transcripts["postgres"]
    assert len(reference) > 130
    for kind in ("sqlite", "supabase"):
        for expected, got in zip(reference, transcripts[kind], strict=True):
            assert got == expected, f"{kind} differs from postgres at step {expected[0]!r}"
