"""Upgrades in place: databases made by earlier versions of videogen.

The old code is frozen in tests/backends/fixtures/ (see its README): its Postgres
migration file and its sandbox stores (schema versions 1 and 2). Each test builds a
database with data through that old code (its own SQL functions, its own store class),
upgrades it with the current code, and checks that every balance, ledger row, job and key
survived (the sandbox's: under the new column names and timestamp format) and that the
new operations work on the upgraded store.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.backends.fixtures.sqlite_v1 import SqliteStore as SqliteStoreV1
from tests.backends.fixtures.sqlite_v2 import SqliteStore as SqliteStoreV2
from tests.backends.test_migration import API_FUNCTIONS
from tests.support import pgcluster
from videogen_cli.domain import JobStatus, NewJob, ProviderIdentity, Submission
from videogen_cli.errors import RefusedError
from videogen_cli.ports import NEVER_SUBMITTED
from videogen_cli.providers.simulator import build_simulator
from videogen_cli.storage.migrate import apply_migration, migration_sql
from videogen_cli.storage.postgres import PostgresStore
from videogen_cli.storage.sandbox_functions import format_ts
from videogen_cli.storage.sqlite import SCHEMA_VERSION, SqliteStore

FIXTURES = Path(__file__).parent / "fixtures"
V1_SQL = FIXTURES / "v1_videogen.sql"
SIM = ProviderIdentity("simulator", "sandbox:upgrade-test")
DATA_TABLES = ("user_credits", "video_jobs", "idempotency_keys", "credit_ledger", "models")
NEW_COLUMNS = {
    "video_jobs": ("provider", "provider_origin", "not_found_count"),
    "credit_ledger": ("idempotency_key",),
}


def _new_job(user: str, key: str, cost: int) -> NewJob:
    return NewJob(user, key, f"fp-{key}", "veo3.1", f"prompt {key}", None, {"d": 1}, cost, {})


# --- Postgres ----------------------------------------------------------------------------


def _call(conn: psycopg.Connection[Any], fn: str, **args: Any) -> Any:
    query = sql.SQL("select public.{}({})").format(
        sql.Identifier(fn),
        sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in args
        ),
    )
    params = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in args.items()}
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def build_v1_postgres(dsn: str) -> dict[str, str]:
    """Today's schema and data, made by today's SQL (the frozen file and its functions)."""
    with psycopg.connect(dsn) as conn:  # one transaction, as the old `db migrate` did
        conn.execute(V1_SQL.read_text(encoding="utf-8"))
    ids: dict[str, str] = {"alice": str(uuid.uuid4()), "bob": str(uuid.uuid4())}
    with psycopg.connect(dsn, autocommit=True) as conn:
        _call(conn, "videogen_grant_credits", p_user_id=ids["alice"], p_credits=50,
              p_reason="welcome", p_operator="ops")  # fmt: skip
        _call(conn, "videogen_grant_credits", p_user_id=ids["bob"], p_credits=10,
              p_reason="welcome", p_operator="ops")  # fmt: skip
        for name, user, cost in [
            ("live", "alice", 8),
            ("partial", "alice", 4),
            ("failed", "alice", 4),
            ("stranded", "bob", 4),
            ("done", "alice", 4),
        ]:
            created = _call(conn, "videogen_create_job", p_user_id=ids[user],
                            p_idempotency_key=f"key-{name}", p_fingerprint=f"fp-key-{name}",
                            p_model="veo3.1", p_prompt=f"old {name}", p_image_url=None,
                            p_settings={"duration": "4s"}, p_cost=cost,
                            p_request={"prompt": name})  # fmt: skip
            ids[name] = created["job"]["job_id"]
        for name in ("live", "partial", "failed", "done"):
            _call(conn, "videogen_record_submission", p_job_id=ids[name],
                  p_endpoint_id="fal-ai/veo3.1", p_request_id=f"req-{name}",
                  p_status_url=None, p_response_url=None, p_cancel_url=None,
                  p_queue_position=3)  # fmt: skip
        _call(conn, "videogen_apply_status", p_job_id=ids["live"], p_status="processing")
        for name in ("partial", "done"):
            _call(conn, "videogen_apply_status", p_job_id=ids[name], p_status="completed",
                  p_video_url=f"https://v/{name}.mp4")  # fmt: skip
        _call(conn, "videogen_fail_job", p_job_id=ids["failed"], p_error="content policy")
        _call(conn, "videogen_refund_job", p_job_id=ids["partial"], p_credits=2,
              p_reason="blurry", p_operator="alice")  # fmt: skip
        conn.execute(
            "update public.video_jobs set created_at = created_at - interval '1 hour'"
            " where job_id = %s",
            (ids["stranded"],),
        )
    return ids


def postgres_snapshot(dsn: str) -> dict[str, list[Any]]:
    """Every row of every data table, as JSON, without the columns added since."""
    out: dict[str, list[Any]] = {}
    with psycopg.connect(dsn) as conn:
        for table in DATA_TABLES:
            drop = list(NEW_COLUMNS.get(table, ()))
            rows = conn.execute(
                sql.SQL("select to_jsonb(t) - %s::text[] from public.{} t order by 1::text").format(
                    sql.Identifier(table)
                ),
                (drop,),
            ).fetchall()
            out[table] = sorted((r[0] for r in rows), key=str)
    return out


def _apply_script(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:  # one transaction, as a Supabase migration runs
        conn.execute(migration_sql())


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["db migrate", "db sql"])
def test_a_postgres_of_before_upgrades_in_place(pg_empty_dsn: str, how: str) -> None:
    dsn = pg_empty_dsn
    ids = build_v1_postgres(dsn)
    before = postgres_snapshot(dsn)
    assert len(before["credit_ledger"]) == 2 + 5 + 2  # grants, charges, two refunds

    if how == "db migrate":
        report = apply_migration(dsn)
        assert report.applied == ("002_money_safety",)
        assert report.baselined is True
    else:
        _apply_script(dsn)
        _apply_script(dsn)  # and again: harmless

    assert postgres_snapshot(dsn) == before
    with psycopg.connect(dsn) as conn:
        records = conn.execute(
            "select version, name, baseline from videogen_private.schema_migrations order by 1"
        ).fetchall()
        functions = conn.execute(
            "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname = 'public' and p.proname like 'videogen%%'"
        ).fetchone()
    assert records == [(1, "001_videogen", True), (2, "002_money_safety", False)]
    assert functions == (len(API_FUNCTIONS),)  # the old signatures are gone, no overloads
    assert apply_migration(dsn).applied == ()

    store = PostgresStore(dsn)
    try:
        _new_operations_work(store, ids)
    finally:
        store.close()
    assert pgcluster.postgres_invariant_problems(dsn) == []


@pytest.mark.postgres
def test_the_printed_script_and_db_migrate_make_the_same_fresh_database(
    pg_admin_dsn: str,
) -> None:
    dumps = []
    for how in ("migrate", "script"):
        name = pgcluster.unique_name("videogen_same")
        dsn = pgcluster.create_database(pg_admin_dsn, name)
        try:
            if how == "migrate":
                assert apply_migration(dsn).applied == ("001_videogen", "002_money_safety")
            else:
                _apply_script(dsn)
            with psycopg.connect(dsn) as conn:
                dumps.append(
                    (
                        conn.execute(
                            "select version, name, checksum, baseline "
                            "from videogen_private.schema_migrations order by 1"
                        ).fetchall(),
                        conn.execute(
                            "select table_name, column_name, data_type, column_default "
                            "from information_schema.columns where table_schema = 'public' "
                            "order by 1, 2"
                        ).fetchall(),
                        conn.execute(
                            "select p.oid::regprocedure::text, md5(p.prosrc) from pg_proc p "
                            "join pg_namespace n on n.oid = p.pronamespace "
                            "where n.nspname in ('public', 'videogen_private') order by 1"
                        ).fetchall(),
                        conn.execute(
                            "select indexname, indexdef from pg_indexes "
                            "where schemaname = 'public' order by 1"
                        ).fetchall(),
                    )
                )
        finally:
            pgcluster.drop_database(pg_admin_dsn, name)
    assert dumps[0] == dumps[1]
    assert [r[3] for r in dumps[0][0]] == [False, False]  # a fresh database: no baseline


# --- SQLite ------------------------------------------------------------------------------


def build_v1_sandbox(path: Path) -> dict[str, str]:
    """A sandbox file with data, made by the frozen sandbox store of before."""
    return build_old_sandbox(path, 1)


def build_old_sandbox(path: Path, version: int) -> dict[str, str]:
    """A sandbox file with data, made by the frozen sandbox store of that schema version.

    The same jobs and balances with either; version 2 also records each submission's
    provider, a grant key and a "not found" answer.
    """
    old: Any = SqliteStoreV1(path) if version == 1 else SqliteStoreV2(path)
    ids: dict[str, str] = {"alice": str(uuid.uuid4()), "bob": str(uuid.uuid4())}
    old.grant_credits(ids["alice"], 50, "welcome", "ops")
    if version == 1:
        old.grant_credits(ids["bob"], 10, "welcome", "ops")
    else:
        old.grant_credits(ids["bob"], 10, "welcome", "ops", idempotency_key="welcome-bob")
    for name, user, cost in [
        ("live", "alice", 8),
        ("partial", "alice", 4),
        ("failed", "alice", 4),
        ("stranded", "bob", 4),
        ("done", "alice", 4),
    ]:
        ids[name] = old.create_job(_new_job(ids[user], f"key-{name}", cost)).job.job_id
    for name in ("live", "partial", "failed", "done"):
        submission = Submission(f"req-{name}", None, None, None, 3)
        if version == 1:
            old.record_submission(ids[name], "fal-ai/veo3.1", submission)
        else:
            old.record_submission(ids[name], "fal-ai/veo3.1", submission, SIM)
    old.apply_status(ids["live"], JobStatus.PROCESSING)
    for name in ("partial", "done"):
        old.apply_status(ids[name], JobStatus.COMPLETED, video_url=f"https://v/{name}.mp4")
    old.fail_job(ids["failed"], "content policy")
    old.refund_job(ids["partial"], 2, "blurry", "alice")
    if version == 2:
        old.note_not_found(ids["stranded"])
    old.close()
    _sqlite(path, "update video_jobs set created_at = ? where job_id = ?",
            ("2020-01-01T00:00:00+00:00", ids["stranded"]))  # fmt: skip
    return ids


def _sqlite(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    import sqlite3

    db = sqlite3.connect(str(path))
    try:
        with db:
            return db.execute(query, params).fetchall()
    finally:
        db.close()


def sandbox_snapshot(path: Path, columns: dict[str, list[str]]) -> dict[str, list[Any]]:
    return {
        table: _sqlite(path, f"select {', '.join(cols)} from {table} order by rowid")
        for table, cols in columns.items()
    }


# Version 3 (the Postgres shape): `model` is `model_slug` (with `model_id` beside it), and
# every timestamp is stored in one format.
RENAMED = {"model": "model_slug"}
TIMESTAMPS = ("created_at", "updated_at", "submitted_at")


def as_upgraded(
    before: dict[str, list[Any]], columns: dict[str, list[str]]
) -> tuple[dict[str, list[str]], dict[str, list[Any]]]:
    """The old columns under their new names, and the old rows as the upgrade stores them."""
    from datetime import datetime

    new_columns = {t: [RENAMED.get(c, c) for c in cols] for t, cols in columns.items()}
    rows: dict[str, list[Any]] = {}
    for table, cols in columns.items():
        rows[table] = [
            tuple(
                format_ts(datetime.fromisoformat(v)) if c in TIMESTAMPS and v is not None else v
                for c, v in zip(cols, row, strict=True)
            )
            for row in before[table]
        ]
    return new_columns, rows


@pytest.mark.parametrize("version", [1, 2])
def test_a_sandbox_file_of_before_upgrades_in_place(tmp_path: Path, version: int) -> None:
    path = tmp_path / "sandbox.sqlite3"
    ids = build_old_sandbox(path, version)
    assert _sqlite(path, "pragma user_version") == [(version,)]
    columns = {
        table: [r[1] for r in _sqlite(path, f"pragma table_info({table})")] for table in DATA_TABLES
    }
    before = sandbox_snapshot(path, columns)
    assert len(before["credit_ledger"]) == 1 + 2 + 5 + 2  # demo seed, grants, charges, refunds
    new_columns, expected = as_upgraded(before, columns)
    # The simulator keeps its own tables in the same file: the upgrade leaves them be.
    simulator = build_simulator(path)
    identity = simulator.identity
    simulator.close()
    sim_tables = _sqlite(path, "select name, sql from sqlite_master where name like 'sim%'")
    assert sim_tables

    store = SqliteStore(path)
    try:
        assert _sqlite(path, "pragma user_version") == [(SCHEMA_VERSION,)]
        assert sandbox_snapshot(path, new_columns) == expected
        # Each job's model_id is the id of the model its slug named.
        assert _sqlite(
            path,
            "select count(*) from video_jobs j join models m"
            " on m.id = j.model_id and m.slug = j.model_slug",
        ) == [(5,)]
        if version == 2:
            assert _sqlite(path, "select count(*) from video_jobs where provider = ?",
                           (SIM.name,)) == [(4,)]  # fmt: skip
            grant = store.grant_credits(ids["bob"], 10, "welcome", "ops", "welcome-bob")
            assert (grant.granted_now, grant.balance) == (False, 6)
            stranded = store.get_job(ids["stranded"])
            assert stranded is not None and stranded.not_found_count == 1
        _new_operations_work(store, ids, SIM if version == 2 else None)
        assert _sqlite(path, "select name, sql from sqlite_master where name like 'sim%'") == (
            sim_tables
        )
        again = build_simulator(path)
        assert again.identity == identity
        again.close()
    finally:
        store.close()
    assert SqliteStore(path).get_balance(ids["alice"]) is not None  # opens again, no upgrade
    assert pgcluster.sqlite_invariant_problems(path) == []


# --- the same checks on both -------------------------------------------------------------


def _new_operations_work(
    store: Any, ids: dict[str, str], provider: ProviderIdentity | None = None
) -> None:
    alice, bob = ids["alice"], ids["bob"]
    assert store.get_balance(alice) == 50 - 8 - 4 - 4 - 4 + 2 + 4
    assert store.get_balance(bob) == 6

    live = store.get_job(ids["live"])
    assert (live.status, live.provider_request_id, live.provider) == (
        JobStatus.PROCESSING,
        "req-live",
        None if provider is None else provider.name,  # None: before providers were recorded
    )
    assert live.not_found_count == 0 and live.provider_identity == provider
    assert store.note_not_found(ids["live"]).not_found_count == 1
    assert store.apply_status(ids["live"], JobStatus.PROCESSING).not_found_count == 0

    assert [j.job_id for j in store.list_unfinished_jobs(0, 10)] == [ids["stranded"], ids["live"]]

    # Honest refunds over refunds made before.
    with pytest.raises(RefusedError) as err:
        store.refund_job(ids["partial"], 1, "more", "bob")
    assert err.value.code == "already_refunded" and "already refunded 2" in err.value.message
    assert store.refund_job(ids["partial"], 2, "blurry", "alice").refunded_now is False
    assert store.refund_job(ids["failed"], None, "asked", "bob").refunded_now is False
    dry = store.refund_job(ids["done"], None, "asked", "bob", dry_run=True)
    assert (dry.refunded_now, dry.balance_before, dry.balance) == (True, 36, 40)

    # The sweeper finds the job stranded before the upgrade.
    swept = store.sweep_stranded(600)
    assert (swept.swept, swept.refunded_credits, swept.job_ids) == (1, 4, (ids["stranded"],))
    stranded = store.get_job(ids["stranded"])
    assert (stranded.status, stranded.error) == (JobStatus.FAILED, NEVER_SUBMITTED)
    assert store.get_balance(bob) == 10

    # New jobs record their provider; grants take keys.
    created = store.create_job(_new_job(alice, "key-new", 4)).job
    recorded = store.record_submission(
        created.job_id, "fal-ai/veo3.1", Submission("req-new", None, None, None, 0), SIM
    )
    assert recorded.provider_identity == SIM
    first = store.grant_credits(bob, 5, "ci", "ci", idempotency_key="ci-1")
    again = store.grant_credits(bob, 5, "ci", "ci", idempotency_key="ci-1")
    assert (first.granted_now, again.granted_now, again.balance) == (True, False, 15)
    balance = store.get_balance(alice)
    replay = store.create_job(_new_job(alice, "key-live", 8))
    assert replay.job.job_id == ids["live"] and replay.replayed is True  # a key of before
    assert store.get_balance(alice) == balance == replay.balance  # replayed: no charge


def _open_in_a_process(path: str, user: str, barrier: Any, answers: Any) -> None:
    """Child process: open (and so upgrade) the sandbox file together with the others."""
    barrier.wait(timeout=60)
    store = SqliteStore(Path(path))
    try:
        answers.put(store.get_balance(user))
    finally:
        store.close()


def test_processes_opening_a_sandbox_of_before_at_once_upgrade_it_once(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "sandbox.sqlite3"
    ids = build_v1_sandbox(path)
    ctx = multiprocessing.get_context("spawn")
    barrier, answers = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(target=_open_in_a_process, args=(str(path), ids["bob"], barrier, answers))
        for _ in range(3)
    ]
    for proc in procs:
        proc.start()
    balances = [answers.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    assert balances == [6, 6, 6]
    assert _sqlite(path, "pragma user_version") == [(SCHEMA_VERSION,)]
    columns = [r[1] for r in _sqlite(path, "pragma table_info(video_jobs)")]
    assert columns.count("not_found_count") == 1
    assert pgcluster.sqlite_invariant_problems(path) == []
