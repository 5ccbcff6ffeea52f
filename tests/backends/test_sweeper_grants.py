"""`public.videogen_sweep_stranded()` as pg_cron and Supabase callers reach it: only
service_role may execute it (SQL roles and the PostgREST endpoint), and two calls at
once, each on its own connection as service_role, refund every stranded job once."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from tests.backends.conftest import ANON_KEY, SERVICE_KEY
from tests.support import pgcluster
from tests.support.postgrest_stub import PostgrestStub
from videogen_cli.domain import NewJob
from videogen_cli.ports import NEVER_SUBMITTED
from videogen_cli.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def strand(dsn: str, count: int) -> tuple[str, list[str]]:
    store = PostgresStore(dsn)
    user = str(uuid.uuid4())
    try:
        store.grant_credits(user, 50, "setup", "pytest")
        ids = [
            store.create_job(
                NewJob(user, f"k-{uuid.uuid4()}", f"fp-{n}", "veo3.1", "p", None, {}, 4, {})
            ).job.job_id
            for n in range(count)
        ]
    finally:
        store.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "update public.video_jobs set created_at = now() - interval '2 hours'"
            " where user_id = %s",
            (user,),
        )
    return user, ids


def keyed(key: str) -> dict[str, str]:
    return {"apikey": key, "Authorization": f"Bearer {key}"}


def test_only_service_role_may_execute_the_sweeper(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select r, has_function_privilege(r,"
            " 'public.videogen_sweep_stranded(interval, bigint, boolean)', 'execute')"
            " from unnest(array['anon', 'authenticated', 'service_role']) r"
        ).fetchall()
    assert rows == [("anon", False), ("authenticated", False), ("service_role", True)]
    user, ids = strand(pg_dsn, 1)
    stub = PostgrestStub(pg_dsn, service_key=SERVICE_KEY, anon_key=ANON_KEY).start()
    try:
        url = f"{stub.url}/rest/v1/rpc/videogen_sweep_stranded"
        refused = httpx.post(url, json={}, headers=keyed(ANON_KEY))
        assert refused.status_code in (401, 403), refused.text
        assert pgcluster.ledger(pg_dsn, user) == [("grant", 50), ("charge", -4)]
        done = httpx.post(url, json={}, headers=keyed(SERVICE_KEY))
        assert done.status_code == 200, done.text
        assert done.json() == {"swept": 1, "refunded_credits": 4, "job_ids": ids,
                               "dry_run": False}  # fmt: skip
    finally:
        stub.stop()
    assert pgcluster.ledger(pg_dsn, user) == [("grant", 50), ("charge", -4), ("refund", 4)]
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []


def test_two_sweeper_calls_at_once_refund_each_job_once(pg_dsn: str) -> None:
    user, ids = strand(pg_dsn, 8)
    barrier = threading.Barrier(2)
    answers: list[dict[str, Any]] = []

    def sweep() -> None:
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("set local role service_role")
            barrier.wait(timeout=30)
            (answer,) = conn.execute("select public.videogen_sweep_stranded()").fetchone() or ()
            conn.commit()
            answers.append(answer if isinstance(answer, dict) else json.loads(answer))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 2
    assert sorted(j for a in answers for j in a["job_ids"]) == sorted(ids)
    assert sum(a["refunded_credits"] for a in answers) == 8 * 4
    ledger = pgcluster.ledger(pg_dsn, user)
    assert ledger.count(("refund", 4)) == 8 and sum(d for _, d in ledger) == 50
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        errors = conn.execute(
            "select distinct error from public.video_jobs where user_id = %s", (user,)
        ).fetchall()
    assert errors == [(NEVER_SUBMITTED,)]
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []
