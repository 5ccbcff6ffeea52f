"""The money functions under real concurrency: many connections, one barrier.

Each thread has its own PostgresStore (its own connection, opened before the barrier), so
the calls really overlap in the server at READ COMMITTED, the isolation level PostgREST
uses. The functions must be correct on their own: no client-side locking exists.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.support import pgcluster
from videogen_cli.domain import JobStatus, NewJob
from videogen_cli.errors import RefusedError, VideogenError
from videogen_cli.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def new_job(user_id: str, *, key: str, cost: int) -> NewJob:
    return NewJob(
        user_id=user_id,
        idempotency_key=key,
        fingerprint=f"fp:{user_id}:{cost}",
        model_slug="veo3.1",
        prompt="a paper boat",
        image_url=None,
        settings={"duration": "4s"},
        cost=cost,
        request={"prompt": "a paper boat"},
    )


def run_together(dsn: str, calls: list[Callable[[PostgresStore], Any]]) -> list[Any]:
    """Run each call in its own thread and connection, released at once by a barrier."""
    stores = [PostgresStore(dsn) for _ in calls]
    for store in stores:
        store.list_models()  # connect now, so the barrier releases ready connections
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = calls[i](stores[i])
        except VideogenError as exc:
            results[i] = exc
        except BaseException as exc:  # surfaces in the assertion below, not lost
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for store in stores:
        store.close()
    unexpected = [r for r in results if isinstance(r, BaseException | type(None))]
    assert not [r for r in unexpected if not isinstance(r, VideogenError)], unexpected
    return results


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_dsn)
    yield s
    s.close()
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []


def test_twenty_concurrent_creates_with_one_key_charge_once(
    pg_dsn: str, store: PostgresStore
) -> None:
    user = str(uuid.uuid4())
    store.grant_credits(user, 100, "setup", "pytest")
    request = new_job(user, key=f"key-{uuid.uuid4()}", cost=8)

    calls: list[Callable[[PostgresStore], Any]] = [lambda s: s.create_job(request)] * 20
    results = run_together(pg_dsn, calls)

    assert not [r for r in results if isinstance(r, VideogenError)], results
    assert len({r.job.job_id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 19
    assert store.get_balance(user) == 92
    assert pgcluster.ledger(pg_dsn, user) == [("grant", 100), ("charge", -8)]
    assert len(store.list_jobs(user)) == 1


def test_concurrent_creates_beyond_the_balance_never_overdraw(
    pg_dsn: str, store: PostgresStore
) -> None:
    user = str(uuid.uuid4())
    store.grant_credits(user, 10, "setup", "pytest")
    requests = [new_job(user, key=f"key-{i}-{uuid.uuid4()}", cost=3) for i in range(20)]

    calls: list[Callable[[PostgresStore], Any]] = [
        lambda s, r=r: s.create_job(r)  # type: ignore[misc]
        for r in requests
    ]
    results = run_together(pg_dsn, calls)

    succeeded = [r for r in results if not isinstance(r, VideogenError)]
    refused = [r for r in results if isinstance(r, VideogenError)]
    assert len(succeeded) == 10 // 3
    assert all(isinstance(r, RefusedError) and r.code == "insufficient_credits" for r in refused)
    assert store.get_balance(user) == 10 - 3 * (10 // 3)
    assert pgcluster.ledger(pg_dsn, user) == [("grant", 10)] + [("charge", -3)] * 3
    # The refused calls left nothing behind: no job, no key.
    assert len(store.list_jobs(user)) == 3
    refused_keys = {r.idempotency_key for r in requests} - {
        r.job.idempotency_key for r in succeeded
    }
    assert all(store.get_idempotency_record(k) is None for k in refused_keys)


def test_refunds_racing_a_failure_refund_once(pg_dsn: str, store: PostgresStore) -> None:
    user = str(uuid.uuid4())
    store.grant_credits(user, 100, "setup", "pytest")
    for round_ in range(3):
        job_id = store.create_job(new_job(user, key=f"race-{round_}-{uuid.uuid4()}", cost=8))
        store.apply_status(job_id.job.job_id, JobStatus.PROCESSING)
        jid = job_id.job.job_id
        calls: list[Callable[[PostgresStore], Any]] = []
        for i in range(10):
            if i % 2:
                calls.append(lambda s, jid=jid: s.fail_job(jid, "provider error"))  # type: ignore[misc]
            else:
                calls.append(
                    lambda s, jid=jid: s.refund_job(jid, None, "support", "alice")  # type: ignore[misc]
                )

        results = run_together(pg_dsn, calls)

        with psycopg.connect(pg_dsn) as conn:
            refunds = conn.execute(
                "select delta, operator from public.credit_ledger "
                "where job_id = %s and kind = 'refund'",
                (jid,),
            ).fetchall()
        assert refunds == [(8, "videogen")]  # exactly one, and it is the failure's
        for r in results:
            if isinstance(r, VideogenError):  # a refund that ran while it was processing
                assert isinstance(r, RefusedError) and r.code == "job_not_refundable"
            elif hasattr(r, "refunded_now"):  # a refund after the failure: a no-op
                assert r.refunded_now is False
        assert store.get_balance(user) == 100


def test_concurrent_refunds_of_a_finished_job_refund_once(
    pg_dsn: str, store: PostgresStore
) -> None:
    user = str(uuid.uuid4())
    store.grant_credits(user, 100, "setup", "pytest")
    job_id = store.create_job(new_job(user, key=f"key-{uuid.uuid4()}", cost=8)).job.job_id
    store.apply_status(job_id, JobStatus.COMPLETED, video_url="https://x/v.mp4")

    # Twelve different partial refunds at once: one wins, the others are refused with
    # the amount already refunded (a second refund after a partial one is exit 4).
    calls: list[Callable[[PostgresStore], Any]] = [
        lambda s, i=i: s.refund_job(job_id, 5, f"ticket {i}", "alice")  # type: ignore[misc]
        for i in range(12)
    ]
    results = run_together(pg_dsn, calls)

    won = [r for r in results if not isinstance(r, VideogenError)]
    refused = [r for r in results if isinstance(r, VideogenError)]
    assert [(r.refunded_now, r.refunded_credits) for r in won] == [(True, 5)]
    assert {(type(e).__name__, e.code) for e in refused} == {("RefusedError", "already_refunded")}
    assert len(refused) == 11
    assert store.get_balance(user) == 97
    assert pgcluster.ledger(pg_dsn, user) == [("grant", 100), ("charge", -8), ("refund", 5)]

    # The very same refund twelve times at once (retries after lost answers): one moves
    # money, the others are harmless no-ops.
    other = store.create_job(new_job(user, key=f"key-{uuid.uuid4()}", cost=8)).job.job_id
    store.apply_status(other, JobStatus.COMPLETED, video_url="https://x/v.mp4")
    same: list[Callable[[PostgresStore], Any]] = [
        lambda s: s.refund_job(other, 5, "ticket", "alice") for _ in range(12)
    ]
    results = run_together(pg_dsn, same)
    assert not [r for r in results if isinstance(r, VideogenError)], results
    assert sorted(r.refunded_now for r in results) == [False] * 11 + [True]
    assert {(r.refunded_credits, r.balance) for r in results} == {(5, 94)}
    assert store.get_balance(user) == 94


def test_concurrent_grants_and_debits_keep_the_ledger_equal_to_the_balance(
    pg_dsn: str, store: PostgresStore
) -> None:
    user = str(uuid.uuid4())
    store.grant_credits(user, 5, "setup", "pytest")
    calls: list[Callable[[PostgresStore], Any]] = []
    for i in range(16):
        if i % 2:
            calls.append(lambda s: s.grant_credits(user, 2, "top-up", "bob"))
        else:
            calls.append(
                lambda s, i=i: s.create_job(new_job(user, key=f"g-{i}-{user}", cost=3))  # type: ignore[misc]
            )

    results = run_together(pg_dsn, calls)

    charged = sum(1 for r in results if hasattr(r, "replayed"))
    assert store.get_balance(user) == 5 + 8 * 2 - 3 * charged >= 0
    # (the fixture checks balance == sum(ledger) for every user on teardown)
