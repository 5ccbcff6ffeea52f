"""Sweepers in separate OS processes at once (real concurrency, not threads): every
stranded credit moves once, on the sandbox file and on Postgres."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.backends.conftest import Backend
from videogen_cli.domain import JobStatus, NewJob
from videogen_cli.ports import NEVER_SUBMITTED

SWEEPERS = 3
STRANDED = 40


def _sweep_in_a_process(kind: str, target: str, barrier: Any, answers: Any) -> None:
    """Child process: open its own store, wait for the others, sweep once."""
    store: Any
    if kind == "sqlite":
        from videogen_cli.storage.sqlite import SqliteStore

        store = SqliteStore(Path(target))
    else:
        from videogen_cli.storage.postgres import PostgresStore

        store = PostgresStore(target)
    try:
        barrier.wait(timeout=60)
        answers.put(list(store.sweep_stranded(600).job_ids))
    finally:
        store.close()


def _strand_jobs(backend: Backend, user: str) -> list[str]:
    ids = []
    for i in range(STRANDED):
        new = NewJob(user, f"k-{uuid.uuid4()}", f"fp-{i}", "veo3.1", f"s{i}", None, {}, 2, {})
        job_id = backend.store.create_job(new).job.job_id
        backend.age_job(job_id, 3600)
        ids.append(job_id)
    return ids


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sweepers_in_separate_processes_refund_each_job_once(
    backend_factory: Callable[[str], Backend], kind: str
) -> None:
    backend = backend_factory(kind)
    user = backend.new_user(100)
    stranded = _strand_jobs(backend, user)
    assert backend.store.get_balance(user) == 100 - 2 * STRANDED
    target = str(backend.path) if kind == "sqlite" else str(backend.dsn)

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(SWEEPERS)
    answers = ctx.Queue()
    procs = [
        ctx.Process(target=_sweep_in_a_process, args=(kind, target, barrier, answers))
        for _ in range(SWEEPERS)
    ]
    for proc in procs:
        proc.start()
    swept = [answers.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    every = [job_id for ids in swept for job_id in ids]
    assert sorted(every) == sorted(stranded)  # each job by exactly one sweeper
    assert backend.store.get_balance(user) == 100
    for job_id in stranded:
        job = backend.store.get_job(job_id)
        assert (job.status, job.error, job.refunded_credits) == (
            JobStatus.FAILED,
            NEVER_SUBMITTED,
            2,
        )
    # (The fixture then checks the ledger invariant straight from the database.)


@pytest.mark.postgres
def test_a_job_locked_by_another_caller_is_skipped_not_waited_for(
    backend_factory: Callable[[str], Backend],
) -> None:
    backend = backend_factory("postgres")
    assert backend.dsn is not None
    user = backend.new_user(100)
    first, *others = _strand_jobs(backend, user)[:3]
    backend.execute(
        "update public.video_jobs set created_at = now() where job_id <> all(%s::uuid[])",
        ([first, *others],),
    )

    with psycopg.connect(backend.dsn) as holder, psycopg.connect(backend.dsn) as sweeper:
        # Another caller (a `status`, a late submission) holds the first job's row.
        holder.execute("select 1 from public.video_jobs where job_id = %s for update", (first,))
        # A sweeper that waited would fail here instead of hanging the test.
        sweeper.execute("set lock_timeout = '5s'")
        row = sweeper.execute("select public.videogen_sweep_stranded('10 minutes')").fetchone()
        sweeper.commit()
        assert row is not None
        assert sorted(row[0]["job_ids"]) == sorted(others)
        holder.rollback()

    again = backend.store.sweep_stranded(600)
    assert again.job_ids == (first,)
    assert backend.store.get_balance(user) == 100 - 2 * (
        len(backend.store.list_jobs(user, 100)) - 3
    )
