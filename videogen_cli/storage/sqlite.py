"""The sandbox store: the SQL functions' Python twin on a stdlib sqlite3 file.

A ``SqlFunctionStore`` like the Postgres and Supabase stores: each JobStore method is one
``videogen_<method>`` call, answered here by the twin of the SQL function
(storage/sandbox_functions.py) instead of by Postgres, so the mapping from answers to
domain records and errors (sqlfunc.py) is the same for all three stores.

The tables are storage/sql/sandbox/schema.sql, the Postgres tables in SQLite's types.
The file's schema version is ``pragma user_version``: a file made by an earlier videogen
is rebuilt in place, in one transaction, on first open. Every call is one transaction
(`BEGIN IMMEDIATE` for the writers): SQLite then serialises writers across processes,
which gives the same guarantees the Postgres functions get from row locks. WAL mode and a
generous busy timeout let many `videogen` processes share the file at once. The
provider simulator keeps its own tables (sim_*) in the same file; nothing here touches
them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from videogen_cli.catalog import DEMO_USER_CREDITS, DEMO_USER_ID, SEED_MODELS, settings_to_json
from videogen_cli.errors import BackendError, VideogenError
from videogen_cli.ports import SYSTEM_OPERATOR
from videogen_cli.storage import sandbox_functions
from videogen_cli.storage.sandbox_functions import Call, SqlFunctionError, ts
from videogen_cli.storage.sqlfunc import SqlFunctionStore, error_from_sqlstate

# 1: the first sandbox; 2: providers, "not found" counts, grant keys (as Postgres
# migration 002); 3: the Postgres tables' shape and checks (sql/sandbox/schema.sql).
SCHEMA_VERSION = 3
DATA_TABLES = ("models", "user_credits", "video_jobs", "idempotency_keys", "credit_ledger")

BUSY_HINT = "try again"
PATH_HINT = "check VIDEOGEN_HOME points at a writable folder"


def schema_sql() -> str:
    """The sandbox DDL shipped in the package (sql/sandbox/schema.sql)."""
    return (
        resources.files("videogen_cli.storage")
        .joinpath("sql", "sandbox", "schema.sql")
        .read_text(encoding="utf-8")
    )


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, one by one (executescript would commit first)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending
            pending = ""


class SqliteStore(SqlFunctionStore):
    """JobStore on a SQLite file; created and seeded on first use."""

    backend_name = "sandbox"

    def __init__(self, path: Path) -> None:
        self.path = path
        # One call at a time per store (a store may be built in one thread and used in
        # another; the file lock serialises processes).
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so every call is exactly
            # one explicit transaction.
            self._db = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("pragma busy_timeout = 30000")
            self._db.execute("pragma journal_mode = wal")
            self._ensure_schema()
            self._db.execute("pragma foreign_keys = on")
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(
                f"cannot open the sandbox database {path}: {exc}", hint=PATH_HINT
            ) from exc

    def close(self) -> None:
        self._db.close()

    # --- transport -----------------------------------------------------------------------
    def _call(self, fn: str, args: dict[str, Any]) -> Any:
        function = sandbox_functions.FUNCTIONS.get(fn)
        if function is None:
            raise self._error("42883", f"function public.{fn} does not exist")
        with self._lock, self._transaction(write=fn not in sandbox_functions.READS) as db:
            try:
                return function(Call(db, datetime.now(UTC)), **args)
            except SqlFunctionError as exc:
                raise self._error(exc.sqlstate, exc.message, exc.detail, exc.hint) from None
            except OverflowError:
                # A number beyond SQLite's 64-bit integers: Postgres' 22003 (bad input).
                raise self._error("22003", "invalid_input", "a number is out of range") from None
            except sqlite3.Error as exc:
                raise BackendError(
                    f"sandbox error in {fn}: {exc}", code="backend_error", hint=BUSY_HINT
                ) from exc

    def _error(
        self, sqlstate: str, message: str, detail: str | None = None, hint: str | None = None
    ) -> VideogenError:
        """The error the Postgres stores would raise for this SQLSTATE (one mapping)."""
        return error_from_sqlstate(
            sqlstate,
            message,
            detail,
            hint,
            backend=self.backend_name,
            auth_hint=PATH_HINT,
            unavailable_hint=BUSY_HINT,
        )

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; a writer takes the lock before any read, so its decisions
        see the latest state. A read is one statement: SQLite runs it as a transaction
        of its own (a consistent snapshot), so it needs no BEGIN."""
        if not write:
            yield self._db
            return
        try:
            self._db.execute("begin immediate")
        except sqlite3.Error as exc:
            raise BackendError(f"sandbox database busy: {exc}", hint=BUSY_HINT) from exc
        try:
            yield self._db
        except BaseException:
            self._db.execute("rollback")
            raise
        else:
            try:
                self._db.execute("commit")
            except sqlite3.Error as exc:
                self._db.execute("rollback")
                raise BackendError(
                    f"sandbox error at commit: {exc}", code="backend_error", hint=BUSY_HINT
                ) from exc

    # --- schema --------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        version = self._db.execute("pragma user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        # A rebuild drops and re-creates referenced tables: foreign keys are checked once
        # at the end (pragma foreign_key_check) instead of row by row. (The pragma is a
        # no-op inside a transaction, hence before BEGIN.)
        self._db.execute("pragma foreign_keys = off")
        with self._transaction() as db:
            # Re-check inside the lock: another process may have seeded or upgraded.
            version = db.execute("pragma user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return
            if version == 0 and not _has_table(db, "video_jobs"):
                _create(db)
            else:
                _rebuild(db, version)
            problems = db.execute("pragma foreign_key_check").fetchall()
            if problems:
                raise sqlite3.IntegrityError(f"foreign keys broken by the upgrade: {problems}")
            db.execute(f"pragma user_version = {SCHEMA_VERSION}")


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute(
        "select 1 from sqlite_master where type = 'table' and name = ?", (name,)
    ).fetchone()
    return found is not None


def _now_ts() -> str:
    return sandbox_functions.format_ts(datetime.now(UTC))


def _create(db: sqlite3.Connection) -> None:
    """A new file: the tables, the seed catalog, the demo user and its grant."""
    for statement in _statements(schema_sql()):
        db.execute(statement)
    now = _now_ts()
    _seed_models(db, now)
    db.execute(
        "insert into user_credits (user_id, balance, created_at, updated_at) values (?, ?, ?, ?)",
        (DEMO_USER_ID, DEMO_USER_CREDITS, now, now),
    )
    db.execute(
        "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator,"
        " created_at) values (?, null, ?, 'grant', 'sandbox seed', ?, ?)",
        (DEMO_USER_ID, DEMO_USER_CREDITS, SYSTEM_OPERATOR, now),
    )


def _seed_models(db: sqlite3.Connection, now: str) -> None:
    """catalog.SEED_MODELS; a model the file already has keeps its row."""
    for m in SEED_MODELS:
        db.execute(
            "insert into models (id, slug, name, endpoint_id, credits_per_second,"
            " requires_image, allowed_settings, active, created_at, updated_at)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
            (
                m.id,
                m.slug,
                m.name,
                m.endpoint_id,
                m.credits_per_second,
                int(m.requires_image),
                json.dumps(settings_to_json(m.settings)),
                int(m.active),
                now,
                now,
            ),
        )


def _rebuild(db: sqlite3.Connection, version: int) -> None:
    """A file of schema version 1 or 2: every row copied into the tables of version 3.

    SQLite cannot add a check or rename a column's meaning in place, so the old tables
    are renamed, the new ones created from schema.sql, the rows copied (``model`` becomes
    ``model_slug`` + ``model_id`` through models.slug; every timestamp is written in the
    stored format) and the old tables dropped, all in the caller's transaction.
    """
    db.create_function("videogen_ts", 1, ts, deterministic=True)
    for table in DATA_TABLES:
        db.execute(f"alter table {table} rename to old_{table}")
    for statement in _STALE_INDEXES:
        db.execute(statement)
    for statement in _statements(schema_sql()):
        db.execute(statement)
    now = _now_ts()
    v2 = version >= 2
    db.execute(
        "insert into models (id, slug, name, endpoint_id, credits_per_second, requires_image,"
        " allowed_settings, active, created_at, updated_at)"
        " select id, slug, name, endpoint_id, credits_per_second, requires_image,"
        " allowed_settings, active, ?, ? from old_models",
        (now, now),
    )
    _seed_models(db, now)
    db.execute(
        "insert into user_credits (user_id, balance, created_at, updated_at)"
        " select user_id, balance, videogen_ts(created_at), videogen_ts(updated_at)"
        " from old_user_credits"
    )
    provider = "j.provider, j.provider_origin, j.not_found_count" if v2 else "null, null, 0"
    db.execute(
        "insert into video_jobs (job_id, user_id, model_id, model_slug, endpoint_id, prompt,"
        " image_url, settings, status, credits_used, refunded_credits, provider_request_id,"
        " status_url, response_url, cancel_url, queue_position, video_url, thumbnail_url,"
        " error, idempotency_key, created_at, updated_at, submitted_at, provider,"
        " provider_origin, not_found_count)"
        " select j.job_id, j.user_id,"
        " coalesce((select m.id from models m where m.slug = j.model),"
        "          (select m.id from models m where m.id = j.model)),"
        " j.model, j.endpoint_id, j.prompt, j.image_url, j.settings, j.status,"
        " j.credits_used, j.refunded_credits, j.provider_request_id, j.status_url,"
        " j.response_url, j.cancel_url, j.queue_position, j.video_url, j.thumbnail_url,"
        " j.error, j.idempotency_key, videogen_ts(j.created_at), videogen_ts(j.updated_at),"
        f" videogen_ts(j.submitted_at), {provider}"
        " from old_video_jobs j order by j.rowid"
    )
    db.execute(
        "insert into idempotency_keys (key, user_id, fingerprint, job_id, request, created_at)"
        " select key, user_id, fingerprint, job_id, request, videogen_ts(created_at)"
        " from old_idempotency_keys order by rowid"
    )
    grant_key = "idempotency_key" if v2 else "null"
    db.execute(
        "insert into credit_ledger (id, user_id, job_id, delta, kind, reason, operator,"
        " created_at, idempotency_key)"
        " select id, user_id, job_id, delta, kind, reason, operator, videogen_ts(created_at),"
        f" {grant_key} from old_credit_ledger order by id"
    )
    # Children first, so that no row ever points at a dropped parent.
    for table in reversed(DATA_TABLES):
        db.execute(f"drop table old_{table}")


# Indexes of versions 1 and 2: they follow their tables on rename, and the new tables'
# indexes have other names; dropped with the old tables anyway, named here for clarity.
_STALE_INDEXES = (
    "drop index if exists video_jobs_user",
    "drop index if exists credit_ledger_user",
    "drop index if exists credit_ledger_grant_key",
    "drop index if exists video_jobs_unfinished",
)
