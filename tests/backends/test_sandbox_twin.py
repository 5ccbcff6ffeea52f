"""The sandbox as a twin of the SQL: one schema shape, one function per SQL function,
one copy of each constant.

storage/sandbox_functions.py mirrors storage/sql/functions.sql function by function, and
storage/sql/sandbox/schema.sql mirrors the tables of storage/sql/migrations/. What they
answer is compared in tests/backends/test_store_contract.py
(test_every_store_gives_the_same_raw_answers); here: their shape, and the constants the
SQL must spell out because it cannot import Python.
"""

from __future__ import annotations

import inspect
import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from videogen_cli.ports import (
    DEFAULT_SUBMIT_GRACE_SECONDS,
    KEY_MAX_LENGTH,
    NEVER_SUBMITTED,
    SYSTEM_OPERATOR,
)
from videogen_cli.storage import sandbox_functions
from videogen_cli.storage.migrate import functions_sql, migrations
from videogen_cli.storage.sqlite import SqliteStore, schema_sql

_SQL_FUNCTION = re.compile(
    r"create or replace function public\.(videogen_\w+)\((.*?)\)\s*returns", re.S
)


def sql_functions() -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Each public.videogen_* function of functions.sql, in file order, with its
    parameters (name, default text or None)."""
    found = []
    for name, params in _SQL_FUNCTION.findall(functions_sql()):
        parsed = []
        for param in filter(None, (p.strip() for p in params.split(","))):
            pname, _, rest = param.partition(" ")
            default = rest.split(" default ", 1)[1].strip() if " default " in rest else None
            parsed.append((pname, default))
        found.append((name, parsed))
    return found


def test_the_twin_has_every_sql_function_in_order_with_its_parameters() -> None:
    functions = sql_functions()
    assert len(functions) == 16
    assert list(sandbox_functions.FUNCTIONS) == [name for name, _ in functions]
    # And the module defines them in that order too.
    in_module = [
        name
        for name, _ in sorted(
            (
                (n, f.__code__.co_firstlineno)
                for n, f in vars(sandbox_functions).items()
                if n.startswith("videogen_") and callable(f)
            ),
            key=lambda item: item[1],
        )
    ]
    assert in_module == [name for name, _ in functions]
    for name, params in functions:
        signature = inspect.signature(sandbox_functions.FUNCTIONS[name])
        twin = list(signature.parameters.values())[1:]  # after the Call
        assert [p.name for p in twin] == [p for p, _ in params], name
        for parameter, (_, default) in zip(twin, params, strict=True):
            has_default = parameter.default is not inspect.Parameter.empty
            assert has_default == (default is not None), (name, parameter.name)
            if default is not None:
                expected: Any = {"null": None, "false": False, "20": 20, "50": 50,
                                 "'10 minutes'": "10 minutes"}[default]  # fmt: skip
                assert parameter.default == expected, (name, parameter.name)


def test_the_twin_takes_no_write_lock_for_exactly_the_sqls_stable_functions() -> None:
    """SqliteStore runs the READS without BEGIN IMMEDIATE: they must be the functions
    the SQL declares `stable` (they write nothing), and every other one a writer."""
    stable = set(
        re.findall(
            r"create or replace function public\.(videogen_\w+)\([^)]*\)\s*returns \w+\s*"
            r"language \w+ stable",
            functions_sql(),
        )
    )
    assert len(stable) == 8
    assert stable == sandbox_functions.READS


def test_the_sql_spells_each_constant_as_the_python_does() -> None:
    """The SQL cannot import ports.py: each literal standing for a constant is pinned."""
    functions = functions_sql()
    # The system operator: on the charge of create_job and the refund of fail_locked_job.
    assert re.findall(r"'charge', 'generate', '([^']*)'\)", functions) == [SYSTEM_OPERATOR]
    assert re.findall(r"'job failed: ' \|\| p_error,\s*'([^']*)'\)", functions) == [SYSTEM_OPERATOR]
    assert functions.count(f"'{SYSTEM_OPERATOR}'") == 2
    # The key length: in the functions' checks and messages, and in the table checks of
    # Postgres (migrations/) and of the sandbox (sql/sandbox/schema.sql).
    tables = "\n".join([*(m.sql for m in migrations()), schema_sql()])
    bounds = re.findall(r"between 1 and (\d+)", functions + tables)
    assert bounds == [str(KEY_MAX_LENGTH)] * 6
    assert re.findall(r"must be 1 to (\d+) characters", functions) == [str(KEY_MAX_LENGTH)] * 2
    # The never-submitted error (also in test_migration.py).
    assert f"'{NEVER_SUBMITTED}'" in functions
    # The sweep's default grace period, as the SQL spells it.
    (grace,) = re.findall(r"grace interval default '(\d+) minutes'", functions)
    assert int(grace) * 60 == DEFAULT_SUBMIT_GRACE_SECONDS


TABLES = ("models", "user_credits", "video_jobs", "idempotency_keys", "credit_ledger")


def _sqlite_columns(path: Path) -> dict[str, list[str]]:
    db = sqlite3.connect(str(path))
    try:
        return {
            table: sorted(r[1] for r in db.execute(f"pragma table_info({table})"))
            for table in TABLES
        }
    finally:
        db.close()


# Rows each table must refuse, in both databases (placeholders: %(user)s, %(job)s).
REFUSED = {
    "charge of nothing": "insert into credit_ledger (user_id, job_id, delta, kind, created_at)"
    " values (%(user)s, %(job)s, 0, 'charge', %(now)s)",
    "positive charge": "insert into credit_ledger (user_id, job_id, delta, kind, created_at)"
    " values (%(user)s, %(job)s, 5, 'charge', %(now)s)",
    "negative refund": "insert into credit_ledger (user_id, job_id, delta, kind, created_at)"
    " values (%(user)s, %(job)s, -5, 'refund', %(now)s)",
    "grant of a job": "insert into credit_ledger (user_id, job_id, delta, kind, created_at)"
    " values (%(user)s, %(job)s, 5, 'grant', %(now)s)",
    "refund of no job": "insert into credit_ledger (user_id, job_id, delta, kind, created_at)"
    " values (%(user)s, null, 5, 'refund', %(now)s)",
    "key on a charge": "insert into credit_ledger (user_id, job_id, delta, kind, created_at,"
    " idempotency_key) values (%(user)s, %(job)s, -5, 'charge', %(now)s, 'k')",
    "empty grant key": "insert into credit_ledger (user_id, job_id, delta, kind, created_at,"
    " idempotency_key) values (%(user)s, null, 5, 'grant', %(now)s, '')",
    "second charge": "insert into credit_ledger (user_id, job_id, delta, kind, created_at)"
    " values (%(user)s, %(job)s, -4, 'charge', %(now)s)",
    "free job": "update video_jobs set credits_used = 0",
    "refund above use": "update video_jobs set refunded_credits = credits_used + 1",
    "negative refund on a job": "update video_jobs set refunded_credits = -1",
    "negative queue": "update video_jobs set queue_position = -1",
    "provider without origin": "update video_jobs set provider = 'fal', provider_origin = null",
    "negative not-found count": "update video_jobs set not_found_count = -1",
    "odd status": "update video_jobs set status = 'lost'",
    "negative balance": "update user_credits set balance = -1",
    "long key": "update idempotency_keys set key = repeat('k', 256)",
    "empty key": "update idempotency_keys set key = ''",
    "a key used twice": "update video_jobs set idempotency_key = 'same'",
}


@pytest.mark.postgres
def test_the_sandbox_tables_have_the_postgres_columns_and_checks(
    tmp_path: Path, pg_dsn: str
) -> None:
    from videogen_cli.domain import NewJob
    from videogen_cli.storage.postgres import PostgresStore

    path = tmp_path / "sandbox.sqlite3"
    sandbox = SqliteStore(path)
    postgres = PostgresStore(pg_dsn)
    try:
        with psycopg.connect(pg_dsn) as conn:
            pg_columns = {
                table: sorted(
                    r[0]
                    for r in conn.execute(
                        "select column_name from information_schema.columns"
                        " where table_schema = 'public' and table_name = %s",
                        (table,),
                    )
                )
                for table in _sqlite_columns(path)
            }
        assert _sqlite_columns(path) == pg_columns

        user = "0a000000-0000-4000-8000-00000000a11c"
        jobs = {}
        for name, store in (("sqlite", sandbox), ("postgres", postgres)):
            store.grant_credits(user, 20, "setup", "pytest")
            for key in ("k-1", "k-2"):
                new = NewJob(user, key, f"f-{key}", "veo3.1", "p", None, {}, 4, {})
                jobs[name] = store.create_job(new).job.job_id
    finally:
        sandbox.close()
        postgres.close()

    refused: dict[str, list[str]] = {"sqlite": [], "postgres": []}
    params = {"user": user, "now": "2026-01-01T00:00:00.000000Z"}
    for label, statement in REFUSED.items():
        statement = statement.replace("repeat('k', 256)", "'" + "k" * 256 + "'")
        db = sqlite3.connect(str(path))
        try:
            with db:
                db.execute("pragma foreign_keys = on")
                db.execute(
                    re.sub(r"%\((\w+)\)s", r":\1", statement), {**params, "job": jobs["sqlite"]}
                )
        except sqlite3.IntegrityError:
            refused["sqlite"].append(label)
        finally:
            db.close()
        with psycopg.connect(pg_dsn) as conn:
            try:
                conn.execute(
                    statement.replace("video_jobs", "public.video_jobs"),
                    {**params, "job": jobs["postgres"]},
                )
            except psycopg.errors.IntegrityError:
                refused["postgres"].append(label)
            conn.rollback()
    assert refused == {"sqlite": list(REFUSED), "postgres": list(REFUSED)}
