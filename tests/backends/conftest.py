"""Fixtures for the backend tests: a throwaway Postgres, fresh databases, the three stores.

* ``pg_admin_dsn`` (session): ``VIDEOGEN_TEST_DATABASE_URL`` if set (the role must be
  allowed to create databases), otherwise a cluster started for this session and
  removed at its end. No server -> the tests skip with the reason, or fail under ``CI``.
* ``pg_template`` (session): a database with the migration applied.
* ``pg_dsn``: a migrated database with no data for each test. Copies of the template are
  pooled and emptied (TRUNCATE, ~10 ms) when a test takes one, because CREATE DATABASE
  costs ~0.3 s here even without fsync. Tests that change more than data (grants, roles,
  the schema) take a database of their own (``pg_empty_dsn``).
* ``backend`` / ``backend_factory``: the JobStore under test (sqlite, postgres, supabase
  through the PostgREST stub), whose money invariant is checked straight from the
  tables after every test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests.support` must import however pytest is started
    sys.path.insert(0, str(_ROOT))

from tests.support import pgcluster  # noqa: E402
from tests.support.postgrest_stub import PostgrestStub  # noqa: E402

# Test-only credentials of the PostgREST stub (not secrets: nothing real accepts them).
SERVICE_KEY = "test-service-role-key-7f3a9c"
ANON_KEY = "test-anon-key-51bd02"


@contextmanager
def backend_variables(kind: str, dsn: str) -> Iterator[dict[str, str]]:
    """The variables a user sets to point videogen at ``kind``: ``postgres`` is ``dsn``
    itself, ``supabase`` a PostgREST stub on ``dsn``, running until the block ends."""
    if kind == "postgres":
        yield {"VIDEOGEN_DATABASE_URL": dsn}
        return
    if kind != "supabase":
        raise ValueError(kind)
    stub = PostgrestStub(dsn, service_key=SERVICE_KEY, anon_key=ANON_KEY).start()
    try:
        yield {"SUPABASE_URL": stub.url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}
    finally:
        stub.stop()


STORE_KINDS = (
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("supabase", marks=pytest.mark.postgres),
)


# --- Postgres ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    url = os.environ.get("VIDEOGEN_TEST_DATABASE_URL", "").strip()
    if url:
        yield url
        return
    try:
        cluster = pgcluster.start_cluster()
    except pgcluster.ClusterUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL server: {exc} (or set VIDEOGEN_TEST_DATABASE_URL)")
    try:
        yield cluster.dsn()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_admin_dsn: str) -> Iterator[str]:
    from videogen_cli.storage.migrate import apply_migration

    name = pgcluster.unique_name("videogen_tpl")
    dsn = pgcluster.create_database(pg_admin_dsn, name)
    apply_migration(dsn)
    yield name
    pgcluster.drop_database(pg_admin_dsn, name)


class DatabasePool:
    """Migrated databases handed out empty: the data tables are truncated on checkout."""

    RESET = (
        "truncate public.credit_ledger, public.idempotency_keys, public.video_jobs, "
        "public.user_credits restart identity"
    )

    def __init__(self, admin_dsn: str, template: str) -> None:
        self.admin_dsn = admin_dsn
        self.template = template
        self.free: list[str] = []
        self.names: list[str] = []

    def acquire(self) -> str:
        if self.free:
            dsn = self.free.pop()
        else:
            name = pgcluster.unique_name("videogen_t")
            dsn = pgcluster.create_database(self.admin_dsn, name, template=self.template)
            self.names.append(name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(self.RESET)
        return dsn

    def release(self, dsn: str) -> None:
        self.free.append(dsn)

    def close(self) -> None:
        for name in self.names:
            pgcluster.drop_database(self.admin_dsn, name)


@pytest.fixture(scope="session")
def pg_pool(pg_admin_dsn: str, pg_template: str) -> Iterator[DatabasePool]:
    pool = DatabasePool(pg_admin_dsn, pg_template)
    yield pool
    pool.close()


@pytest.fixture
def pg_dsn(pg_pool: DatabasePool) -> Iterator[str]:
    dsn = pg_pool.acquire()
    yield dsn
    pg_pool.release(dsn)


@pytest.fixture
def pg_empty_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh database without the migration."""
    name = pgcluster.unique_name("videogen_e")
    dsn = pgcluster.create_database(pg_admin_dsn, name)
    yield dsn
    pgcluster.drop_database(pg_admin_dsn, name)


# --- the stores --------------------------------------------------------------------------
@dataclass
class Backend:
    kind: str
    store: Any  # a JobStore
    invariant_problems: Callable[[], list[str]]
    dsn: str | None = None  # postgres and supabase: the database behind the store
    users: list[str] = field(default_factory=list)
    path: Path | None = None  # sqlite: the sandbox file
    # Another store of the same kind on the same database (for concurrent callers).
    open_another: Callable[[], Any] | None = None

    def new_user(self, credits: int) -> str:
        import uuid

        user_id = str(uuid.uuid4())
        self.store.grant_credits(user_id, credits, "test setup", "pytest")
        self.users.append(user_id)
        return user_id

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run SQL straight on the database behind the store (``%s`` placeholders)."""
        if self.path is not None:
            import sqlite3

            db = sqlite3.connect(str(self.path), timeout=30.0)
            try:
                with db:
                    return db.execute(query.replace("%s", "?"), params).fetchall()
            finally:
                db.close()
        assert self.dsn is not None
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def age_job(self, job_id: str, seconds: float) -> None:
        """Pretend the job was created ``seconds`` earlier (no test waits for real)."""
        if self.path is not None:
            from datetime import datetime, timedelta

            from videogen_cli.storage.sandbox_functions import format_ts

            (created,) = self.execute("select created_at from video_jobs where job_id = %s",
                                      (job_id,))[0]  # fmt: skip
            earlier = datetime.fromisoformat(created) - timedelta(seconds=seconds)
            self.execute(  # the stored format (sql/sandbox/schema.sql)
                "update video_jobs set created_at = %s where job_id = %s",
                (format_ts(earlier), job_id),
            )
        else:
            self.execute(
                "update public.video_jobs set created_at = created_at - make_interval(secs => %s)"
                " where job_id = %s",
                (seconds, job_id),
            )


def _sqlite_store_class() -> Any:
    try:
        from videogen_cli.storage.sqlite import SqliteStore
    except ImportError as exc:
        pytest.skip(f"the sandbox store is not available yet: {exc}")
    return SqliteStore


@pytest.fixture
def backend_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Backend]]:
    """Opens stores of any kind; closes them and checks their invariant afterwards."""
    opened: list[Backend] = []
    cleanups: list[Callable[[], None]] = []

    def open_backend(kind: str) -> Backend:
        if kind == "sqlite":
            path = tmp_path / f"sandbox-{len(opened)}.sqlite3"
            store_class = _sqlite_store_class()
            store = store_class(path)
            backend = Backend(
                kind,
                store,
                lambda: pgcluster.sqlite_invariant_problems(path),
                path=path,
                open_another=lambda: store_class(path),
            )
        elif kind in ("postgres", "supabase"):
            from videogen_cli.storage.postgres import PostgresStore

            # A session fixture, looked up lazily so that sqlite needs no server; the
            # database goes back to the pool after the invariant check below.
            pool: DatabasePool = request.getfixturevalue("pg_pool")
            dsn = pool.acquire()
            cleanups.append(lambda: pool.release(dsn))
            another: Callable[[], Any]
            if kind == "postgres":
                store = PostgresStore(dsn)
                another = lambda: PostgresStore(dsn)  # noqa: E731
            else:
                from videogen_cli.storage.supabase import SupabaseStore

                stub = PostgrestStub(dsn, service_key=SERVICE_KEY, anon_key=ANON_KEY).start()
                cleanups.append(stub.stop)
                store = SupabaseStore(stub.url, SERVICE_KEY)
                another = lambda: SupabaseStore(stub.url, SERVICE_KEY)  # noqa: E731
            backend = Backend(
                kind,
                store,
                lambda: pgcluster.postgres_invariant_problems(dsn),
                dsn=dsn,
                open_another=another,
            )
        else:
            raise ValueError(kind)
        opened.append(backend)
        return backend

    yield open_backend

    try:
        for backend in opened:
            backend.store.close()
        problems = [f"{b.kind}: {p}" for b in opened for p in b.invariant_problems()]
        assert not problems, "money invariant broken:\n" + "\n".join(problems)
    finally:
        # Stubs before databases: a stub holds pooled connections to its database.
        for cleanup in reversed(cleanups):
            cleanup()


@pytest.fixture(params=STORE_KINDS)
def backend(request: pytest.FixtureRequest, backend_factory: Callable[[str], Backend]) -> Backend:
    return backend_factory(request.param)
