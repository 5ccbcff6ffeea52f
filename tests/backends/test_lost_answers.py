"""A call whose answer is lost, then the retry: money moves once (README "Money
rules"; the retry rule of ports.py).

The call is held on a row lock taken by another connection, so the client gives up (a
read timeout for Supabase, a dropped connection for Postgres) while the database work is
still pending. Whatever the database then did, calling again with the same arguments
must not charge or refund a second time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

import videogen_cli.storage.supabase as supabase_store
from tests.backends.conftest import ANON_KEY, SERVICE_KEY
from tests.support import pgcluster
from tests.support.postgrest_stub import PostgrestStub
from videogen_cli.domain import JobStatus, NewJob
from videogen_cli.errors import BackendError
from videogen_cli.storage.postgres import PostgresStore
from videogen_cli.storage.supabase import SupabaseStore

pytestmark = pytest.mark.postgres


def new_job(user_id: str) -> NewJob:
    return NewJob(
        user_id=user_id,
        idempotency_key=f"key-{uuid.uuid4()}",
        fingerprint=f"fp-{user_id}",
        model_slug="veo3.1",
        prompt="a paper boat",
        image_url=None,
        settings={"duration": "4s"},
        cost=8,
        request={"prompt": "a paper boat"},
    )


class RowLock:
    """Holds `select ... for update` on one row until released."""

    def __init__(self, dsn: str, table: str, column: str, value: str) -> None:
        self.conn = psycopg.connect(dsn)
        self.conn.execute(f"select 1 from public.{table} where {column} = %s for update", (value,))

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def wait_for_lock_waiter(dsn: str, function: str) -> int:
    """The pid of the backend blocked inside `function`."""
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select pid from pg_stat_activity where wait_event_type = 'Lock' "
                "and datname = current_database() and query like %s",
                (f"%{function}%",),
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.02)
    raise AssertionError(f"nothing blocked in {function}")


@pytest.fixture
def supabase_pair(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SupabaseStore, SupabaseStore]]:
    """(patient, impatient): the impatient one gives up after 0.5 s, only where meant to."""
    with PostgrestStub(pg_dsn, service_key=SERVICE_KEY, anon_key=ANON_KEY) as stub:
        patient = SupabaseStore(stub.url, SERVICE_KEY)
        monkeypatch.setattr(supabase_store, "TIMEOUT", httpx.Timeout(0.5, connect=5.0))
        impatient = SupabaseStore(stub.url, SERVICE_KEY)
        yield patient, impatient
        patient.close()
        impatient.close()
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []


def test_supabase_create_job_timeout_then_retry_charges_once(
    pg_dsn: str, supabase_pair: tuple[SupabaseStore, SupabaseStore]
) -> None:
    store, impatient = supabase_pair
    user = str(uuid.uuid4())
    store.grant_credits(user, 20, "setup", "pytest")
    request = new_job(user)
    lock = RowLock(pg_dsn, "user_credits", "user_id", user)
    try:
        with pytest.raises(BackendError) as lost:
            impatient.create_job(request)  # the debit waits on the lock; the client gives up
        assert lost.value.code == "backend_unavailable"
        assert "unknown" in (lost.value.hint or "")
    finally:
        lock.release()  # the first call now commits on the server, unseen by the client

    retry = store.create_job(request)

    assert retry.replayed is True
    assert retry.balance == 12
    assert pgcluster.ledger(pg_dsn, user) == [("grant", 20), ("charge", -8)]


def test_supabase_refund_timeout_then_retry_refunds_once(
    pg_dsn: str, supabase_pair: tuple[SupabaseStore, SupabaseStore]
) -> None:
    store, impatient = supabase_pair
    user = str(uuid.uuid4())
    store.grant_credits(user, 20, "setup", "pytest")
    job_id = store.create_job(new_job(user)).job.job_id
    store.apply_status(job_id, JobStatus.COMPLETED, video_url="https://x/v.mp4")
    lock = RowLock(pg_dsn, "video_jobs", "job_id", job_id)
    try:
        with pytest.raises(BackendError):
            impatient.refund_job(job_id, None, "customer asked", "alice")
    finally:
        lock.release()

    retry = store.refund_job(job_id, None, "customer asked", "alice")

    assert (retry.refunded_now, retry.refunded_credits, retry.balance) == (False, 8, 20)
    assert pgcluster.ledger(pg_dsn, user) == [("grant", 20), ("charge", -8), ("refund", 8)]


def test_postgres_connection_lost_mid_call_then_retry_charges_once(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    user = str(uuid.uuid4())
    store.grant_credits(user, 20, "setup", "pytest")
    request = new_job(user)
    lock = RowLock(pg_dsn, "user_credits", "user_id", user)
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["result"] = store.create_job(request)
        except BackendError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=call)
    worker.start()
    try:
        pid = wait_for_lock_waiter(pg_dsn, "videogen_create_job")
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
        worker.join(timeout=10)
    finally:
        lock.release()

    error = outcome.get("error")
    assert isinstance(error, BackendError), outcome
    assert error.code == "backend_unavailable"
    assert "unknown" in (error.hint or "")

    retry = store.create_job(request)  # the store reconnects by itself
    store.close()

    assert retry.replayed is False  # the lost call was rolled back with its connection
    assert retry.balance == 12
    assert pgcluster.ledger(pg_dsn, user) == [("grant", 20), ("charge", -8)]
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []
