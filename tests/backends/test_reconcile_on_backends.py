"""Issue 6 on the real backends: a job stays with its provider across machines sharing
one database, and many `videogen reconcile` processes at once move each credit once.

Each "machine" is its own VIDEOGEN_HOME (so its own simulator, another provider) on the
same Postgres (psycopg) or Supabase (the real client over HTTP to the PostgREST stub).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.backends.test_cli_on_backends import Env, gen, new_user
from tests.backends.test_cli_on_backends import env as env  # the fixture: both backends
from tests.support import pgcluster
from tests.support.jobs import charged_job
from tests.support.processes import videogen
from videogen_cli.core.jobs import NOT_FOUND_LIMIT
from videogen_cli.ports import NEVER_SUBMITTED
from videogen_cli.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def other_machine(env: Env, home: Any) -> dict[str, str]:
    """The same backend, seen from another VIDEOGEN_HOME: another simulator."""
    return {**env.env, "VIDEOGEN_HOME": str(home)}


def test_another_machines_simulator_shows_the_job_and_never_refunds_it(
    env: Env, tmp_path: Any
) -> None:
    user = new_user(env, 40)
    job_id = gen(env, user, "order-xm-1", "--prompt", "boat sim:lost")["job_id"]
    here = Env(env.kind, env.dsn, other_machine(env, tmp_path / "machine-b"))
    stored = env.run("status", job_id, "--no-sync")
    for _ in range(NOT_FOUND_LIMIT + 1):
        out = here.run("status", job_id)
        reason = out.pop("sync_reason")
        assert out == {**stored, "synced": False}
    assert f"job {job_id} was submitted to the simulator of sandbox:" in reason
    summary = here.run("reconcile")
    assert (summary["seen"], summary["skipped_other_provider"], summary["synced"]) == (1, 1, 0)
    assert pgcluster.ledger(env.dsn, user) == [("grant", 40), ("charge", -16)]
    # Its own machine applies the not-found rule: the 3rd answer in a row refunds it.
    statuses = [env.run("status", job_id)["status"] for _ in range(NOT_FOUND_LIMIT)]
    assert statuses == ["pending"] * (NOT_FOUND_LIMIT - 1) + ["failed"]
    assert pgcluster.ledger(env.dsn, user) == [("grant", 40), ("charge", -16), ("refund", 16)]


def strand(dsn: str, user: str, key: str) -> str:
    """A job charged two hours ago by a process that died before submitting it."""
    store = PostgresStore(dsn)
    try:
        job = charged_job(store, key, user_id=user, model="sora-2-t2v", duration="4")
    finally:
        store.close()
    Env("postgres", dsn, {}).sql(
        "update public.video_jobs set created_at = now() - interval '2 hours'"
        " where job_id = %s returning job_id",
        job.job_id,
    )
    return job.job_id


@pytest.mark.slow
def test_several_reconcile_processes_at_once_move_each_credit_once(env: Env) -> None:
    user = new_user(env, 100)
    stranded = [strand(env.dsn, user, f"order-st-{n}") for n in range(6)]
    lost = [
        gen(env, user, f"order-lost-{n}", "--prompt", "boat sim:lost")["job_id"] for n in range(2)
    ]
    env.sql(  # one answer short of the limit: the next "not found" fails and refunds
        "update public.video_jobs set not_found_count = %s where provider_request_id is not null"
        " returning job_id",
        NOT_FOUND_LIMIT - 1,
    )
    assert env.balance(user) == 100 - 6 * 4 - 2 * 16
    dry = env.run("reconcile", "--dry-run")
    assert (dry["would_refund_stranded"], dry["would_sync"]) == (6, 2)
    assert env.balance(user) == 44

    full_env = {**os.environ, **env.env}
    procs = [videogen("reconcile", "--json", env=full_env) for _ in range(5)]
    summaries = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        summaries.append(json.loads(stdout))
    # The sweeper locks what it sweeps (SKIP LOCKED): each stranded job is refunded by
    # exactly one process, and fail_job refunds each lost job once, whoever gets there.
    assert sum(s["stranded_and_refunded"] for s in summaries) == 6
    assert env.balance(user) == 100
    for job_id in stranded:
        assert env.sql(
            "select kind, delta from public.credit_ledger where job_id = %s order by id", job_id
        ) == [("charge", -4), ("refund", 4)]
        assert env.sql("select error from public.video_jobs where job_id = %s", job_id) == [
            (NEVER_SUBMITTED,)
        ]
    for job_id in lost:
        assert env.sql(
            "select kind, delta from public.credit_ledger where job_id = %s order by id", job_id
        ) == [("charge", -16), ("refund", 16)]
