"""The sandbox store: the JobStore seam on stdlib sqlite3.

Mirrors the Postgres tables and functions (storage/sql/) so that the contract suite can
hold both to one behaviour. The file's schema version is ``pragma user_version``: a file
made by an earlier videogen is upgraded in place, in one transaction, on first open.
Every money-moving method is one `BEGIN IMMEDIATE` transaction: SQLite then serialises
writers across processes, which gives the same guarantees the Postgres functions get
from row locks. WAL mode and a generous busy timeout let many `videogen` processes share
the file at once.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from videogen_cli.catalog import (
    DEMO_USER_CREDITS,
    DEMO_USER_ID,
    SEED_MODELS,
    settings_from_json,
    settings_to_json,
)
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
from videogen_cli.errors import BackendError, NotFoundError, RefusedError, UsageError
from videogen_cli.ports import NEVER_SUBMITTED, SYSTEM_OPERATOR
from videogen_cli.rules import refund_amount
from videogen_cli.storage.sqlfunc import check_seconds

SCHEMA_VERSION = 2

# Version 1: the tables (and, in _ensure_schema, the seed). Never edited once shipped:
# a change is a new entry in _UPGRADES, as the Postgres migrations are new files.
_SCHEMA_V1 = """
create table if not exists models (
  id text primary key,
  slug text not null unique,
  name text not null default '',
  endpoint_id text not null,
  credits_per_second integer not null check (credits_per_second > 0),
  requires_image integer not null default 0,
  allowed_settings text not null,
  active integer not null default 1
);
create table if not exists user_credits (
  user_id text primary key,
  balance integer not null check (balance >= 0),
  created_at text not null,
  updated_at text not null
);
create table if not exists video_jobs (
  job_id text primary key,
  user_id text not null references user_credits(user_id),
  model text not null,
  endpoint_id text not null,
  prompt text not null,
  image_url text,
  settings text not null,
  status text not null check (status in ('pending','processing','completed','failed')),
  credits_used integer not null check (credits_used >= 0),
  refunded_credits integer not null default 0,
  provider_request_id text,
  status_url text, response_url text, cancel_url text,
  queue_position integer,
  video_url text, thumbnail_url text, error text,
  idempotency_key text,
  created_at text not null,
  updated_at text not null,
  submitted_at text
);
create index if not exists video_jobs_user on video_jobs(user_id, created_at);
create table if not exists idempotency_keys (
  key text primary key,
  user_id text not null,
  fingerprint text not null,
  job_id text not null references video_jobs(job_id),
  request text not null,
  created_at text not null
);
create table if not exists credit_ledger (
  id integer primary key autoincrement,
  user_id text not null,
  job_id text,
  delta integer not null,
  kind text not null check (kind in ('grant','charge','refund')),
  reason text,
  operator text,
  created_at text not null,
  unique (job_id, kind)
);
create index if not exists credit_ledger_user on credit_ledger(user_id, id);
"""

# version -> the statements that bring a file from version - 1 to it (the same changes as
# storage/sql/migrations/ of that number).
_UPGRADES: dict[int, tuple[str, ...]] = {
    2: (
        # Which provider took each job (null for older jobs) and its "not found" answers.
        "alter table video_jobs add column provider text",
        "alter table video_jobs add column provider_origin text",
        "alter table video_jobs add column not_found_count integer not null default 0",
        # Grant keys: their own namespace, on the grant's ledger row.
        "alter table credit_ledger add column idempotency_key text",
        "create unique index credit_ledger_grant_key on credit_ledger(idempotency_key)"
        " where idempotency_key is not null",
        "create index video_jobs_unfinished on video_jobs(created_at)"
        " where status in ('pending', 'processing')",
    ),
}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteStore:
    """JobStore on a SQLite file; created and seeded on first use."""

    backend_name = "sandbox"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so every write is
            # exactly one explicit transaction.
            # check_same_thread=False: a store may be built in one thread and used in
            # another (never by two at once); the file lock serialises writers anyway.
            self._db = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("pragma busy_timeout = 30000")
            self._db.execute("pragma journal_mode = wal")
            self._db.execute("pragma foreign_keys = on")
            self._ensure_schema()
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(
                f"cannot open the sandbox database {path}: {exc}",
                hint="check VIDEOGEN_HOME points at a writable folder",
            ) from exc

    # --- plumbing ------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before any read so decisions see the latest state."""
        try:
            self._db.execute("begin immediate")
        except sqlite3.Error as exc:
            raise BackendError(f"sandbox database busy: {exc}", hint="try again") from exc
        try:
            yield self._db
        except BaseException:
            self._db.execute("rollback")
            raise
        else:
            self._db.execute("commit")

    def _ensure_schema(self) -> None:
        version = self._db.execute("pragma user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        with self._tx() as db:
            # Re-check inside the lock: another process may have seeded or upgraded.
            version = db.execute("pragma user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return
            if version == 0:
                self._create_v1(db)
            for target in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES[target]:
                    db.execute(statement)
            db.execute(f"pragma user_version = {SCHEMA_VERSION}")

    def _create_v1(self, db: sqlite3.Connection) -> None:
        """A new file: the version 1 tables and the seed (the demo user, the catalog)."""
        for statement in _SCHEMA_V1.split(";"):
            if statement.strip():
                db.execute(statement)
        for m in SEED_MODELS:
            db.execute(
                "insert or ignore into models values (?,?,?,?,?,?,?,?)",
                (
                    m.id,
                    m.slug,
                    m.name,
                    m.endpoint_id,
                    m.credits_per_second,
                    int(m.requires_image),
                    json.dumps(settings_to_json(m.settings)),
                    int(m.active),
                ),
            )
        if not db.execute(
            "select 1 from user_credits where user_id = ?", (DEMO_USER_ID,)
        ).fetchone():
            now = _now()
            db.execute(
                "insert into user_credits values (?, ?, ?, ?)",
                (DEMO_USER_ID, DEMO_USER_CREDITS, now, now),
            )
            db.execute(
                "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator,"
                " created_at) values (?, null, ?, 'grant', 'sandbox seed', ?, ?)",
                (DEMO_USER_ID, DEMO_USER_CREDITS, SYSTEM_OPERATOR, now),
            )

    def close(self) -> None:
        self._db.close()

    # --- reads ---------------------------------------------------------------------------
    def get_model(self, slug_or_id: str) -> Model | None:
        row = self._db.execute(
            "select * from models where slug = ? or id = ?", (slug_or_id, slug_or_id)
        ).fetchone()
        return _model(row) if row else None

    def list_models(self) -> list[Model]:
        return [_model(r) for r in self._db.execute("select * from models order by slug")]

    def get_balance(self, user_id: str) -> int | None:
        row = self._db.execute(
            "select balance from user_credits where user_id = ?", (user_id,)
        ).fetchone()
        return int(row[0]) if row else None

    def get_job(self, job_id: str) -> Job | None:
        row = self._db.execute("select * from video_jobs where job_id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list_jobs(self, user_id: str | None = None, limit: int = 20) -> list[Job]:
        if user_id:
            rows = self._db.execute(
                "select * from video_jobs where user_id = ? order by created_at desc limit ?",
                (user_id, limit),
            )
        else:
            rows = self._db.execute(
                "select * from video_jobs order by created_at desc limit ?", (limit,)
            )
        return [_job(r) for r in rows]

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        row = self._db.execute("select * from idempotency_keys where key = ?", (key,)).fetchone()
        if not row:
            return None
        return IdempotencyRecord(
            key=row["key"],
            user_id=row["user_id"],
            fingerprint=row["fingerprint"],
            job_id=row["job_id"],
            request=json.loads(row["request"]),
            created_at=datetime.fromisoformat(row["created_at"]),
        )

    def list_ledger(self, user_id: str, limit: int = 50) -> list[LedgerEntry]:
        rows = self._db.execute(
            "select * from credit_ledger where user_id = ? order by id desc limit ?",
            (user_id, limit),
        )
        return [
            LedgerEntry(
                id=r["id"],
                user_id=r["user_id"],
                job_id=r["job_id"],
                delta=r["delta"],
                kind=LedgerKind(r["kind"]),
                reason=r["reason"],
                operator=r["operator"],
                created_at=datetime.fromisoformat(r["created_at"]),
            )
            for r in rows
        ]

    # --- money ---------------------------------------------------------------------------
    def grant_credits(
        self,
        user_id: str,
        credits: int,
        reason: str,
        operator: str,
        idempotency_key: str | None = None,
    ) -> GrantOutcome:
        if credits < 1:
            raise UsageError("credits to grant must be at least 1")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
            raise UsageError(
                "the idempotency key must be 1 to 255 characters",
                hint="use a UUID or a name such as ci-fund-<run id>",
            )
        with self._tx() as db:
            if idempotency_key is not None:
                # Same rule as public.videogen_grant_credits: a known key moves nothing.
                previous = db.execute(
                    "select * from credit_ledger where idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if previous:
                    return GrantOutcome(
                        user_id=previous["user_id"],
                        granted=previous["delta"],
                        granted_now=False,
                        balance=self._balance_in(db, previous["user_id"]),
                        reason=previous["reason"],
                        operator=previous["operator"],
                        idempotency_key=idempotency_key,
                    )
            balance = self._grant(db, user_id, credits, reason, operator, idempotency_key)
            return GrantOutcome(user_id, credits, True, balance, reason, operator, idempotency_key)

    def _grant(
        self,
        db: sqlite3.Connection,
        user_id: str,
        credits: int,
        reason: str,
        operator: str,
        idempotency_key: str | None = None,
    ) -> int:
        now = _now()
        db.execute(
            "insert into user_credits values (?, ?, ?, ?) on conflict(user_id) do update"
            " set balance = balance + excluded.balance, updated_at = excluded.updated_at",
            (user_id, credits, now, now),
        )
        db.execute(
            "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator,"
            " created_at, idempotency_key) values (?, null, ?, 'grant', ?, ?, ?, ?)",
            (user_id, credits, reason, operator, now, idempotency_key),
        )
        return self._balance_in(db, user_id)

    def create_job(self, new: NewJob) -> CreateJobResult:
        with self._tx() as db:
            claimed = db.execute(
                "select fingerprint, job_id from idempotency_keys where key = ?",
                (new.idempotency_key,),
            ).fetchone()
            if claimed:
                if claimed["fingerprint"] != new.fingerprint:
                    raise RefusedError(
                        "this idempotency key was first used with a different request",
                        code="idempotency_key_reused",
                        hint="use a new --idempotency-key for a new request",
                    )
                job = _job(self._job_row(db, claimed["job_id"]))
                return CreateJobResult(job, True, self._balance_in(db, job.user_id))
            model = db.execute(
                "select endpoint_id from models where slug = ?", (new.model_slug,)
            ).fetchone()
            if not model:
                raise NotFoundError(f"model {new.model_slug} not found", code="model_not_found")
            balance = db.execute(
                "select balance from user_credits where user_id = ?", (new.user_id,)
            ).fetchone()
            if balance is None:
                raise NotFoundError(f"user {new.user_id} not found", code="user_not_found")
            if balance[0] < new.cost:
                raise RefusedError(
                    f"insufficient credits: the job costs {new.cost}, the balance is {balance[0]}",
                    code="insufficient_credits",
                    hint="grant credits to the user or choose a shorter duration",
                )
            now, job_id = _now(), str(uuid.uuid4())
            db.execute(
                "update user_credits set balance = balance - ?, updated_at = ? where user_id = ?",
                (new.cost, now, new.user_id),
            )
            db.execute(
                "insert into video_jobs (job_id, user_id, model, endpoint_id, prompt, image_url,"
                " settings, status, credits_used, idempotency_key, created_at, updated_at)"
                " values (?,?,?,?,?,?,?,'pending',?,?,?,?)",
                (
                    job_id,
                    new.user_id,
                    new.model_slug,
                    model["endpoint_id"],
                    new.prompt,
                    new.image_url,
                    json.dumps(new.settings, sort_keys=True),
                    new.cost,
                    new.idempotency_key,
                    now,
                    now,
                ),
            )
            db.execute(
                "insert into idempotency_keys values (?,?,?,?,?,?)",
                (
                    new.idempotency_key,
                    new.user_id,
                    new.fingerprint,
                    job_id,
                    json.dumps(new.request, sort_keys=True),
                    now,
                ),
            )
            db.execute(
                "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator,"
                " created_at) values (?, ?, ?, 'charge', 'generate', ?, ?)",
                (new.user_id, job_id, -new.cost, SYSTEM_OPERATOR, now),
            )
            job = _job(self._job_row(db, job_id))
            return CreateJobResult(job, False, self._balance_in(db, new.user_id))

    def record_submission(
        self, job_id: str, endpoint_id: str, submission: Submission, provider: ProviderIdentity
    ) -> Job:
        if not submission.request_id or not provider.name or not provider.origin:
            # As public.videogen_record_submission (PT400): a caller bug, nothing stored.
            raise UsageError("the request id, the provider and its origin are required")
        with self._tx() as db:
            now = _now()
            db.execute(
                "update video_jobs set provider_request_id = ?, endpoint_id = ?, status_url = ?,"
                " response_url = ?, cancel_url = ?, queue_position = ?, provider = ?,"
                " provider_origin = ?, not_found_count = 0, submitted_at = ?, updated_at = ?"
                " where job_id = ? and status = 'pending' and provider_request_id is null",
                (
                    submission.request_id,
                    endpoint_id,
                    submission.status_url,
                    submission.response_url,
                    submission.cancel_url,
                    submission.queue_position,
                    provider.name,
                    provider.origin,
                    now,
                    now,
                    job_id,
                ),
            )
            return _job(self._job_row(db, job_id))

    def note_not_found(self, job_id: str) -> Job:
        with self._tx() as db:
            db.execute(
                "update video_jobs set not_found_count = not_found_count + 1, updated_at = ?"
                " where job_id = ? and status in ('pending', 'processing')",
                (_now(), job_id),
            )
            return _job(self._job_row(db, job_id))

    def apply_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        queue_position: int | None = None,
        video_url: str | None = None,
        thumbnail_url: str | None = None,
    ) -> Job:
        if status is JobStatus.FAILED:
            raise ValueError("use fail_job to fail a job: it refunds")
        with self._tx() as db:
            job = _job(self._job_row(db, job_id))
            if job.status.terminal:
                return job
            if status is not JobStatus.PENDING:
                queue_position = None
            wanted = (status, queue_position, video_url, thumbnail_url, 0)
            if (
                job.status,
                job.queue_position,
                job.video_url,
                job.thumbnail_url,
                job.not_found_count,
            ) == wanted:
                # As in public.videogen_apply_status: polling the same answer writes nothing.
                return job
            db.execute(
                "update video_jobs set status = ?, queue_position = ?, video_url = ?,"
                " thumbnail_url = ?, not_found_count = 0, updated_at = ? where job_id = ?",
                (status.value, queue_position, video_url, thumbnail_url, _now(), job_id),
            )
            return _job(self._job_row(db, job_id))

    def fail_job(self, job_id: str, error: str) -> Job:
        with self._tx() as db:
            return self._fail(db, _job(self._job_row(db, job_id)), error)

    def refund_job(
        self,
        job_id: str,
        credits: int | None,
        reason: str,
        operator: str,
        *,
        dry_run: bool = False,
    ) -> RefundOutcome:
        if credits is not None and credits < 1:
            raise UsageError("--credits must be at least 1")
        # The rules of public.videogen_refund_job, in the same order.
        with self._tx() as db:
            row = db.execute("select * from video_jobs where job_id = ?", (job_id,)).fetchone()
            if not row:
                raise NotFoundError(f"job {job_id} not found", code="job_not_found")
            job = _job(row)
            before = self._balance_in(db, job.user_id)
            previous = db.execute(
                "select delta, reason, operator from credit_ledger"
                " where job_id = ? and kind = 'refund'",
                (job_id,),
            ).fetchone()
            if previous:
                same_again = (
                    (credits if credits is not None else job.credits_used) == previous["delta"]
                    and reason == previous["reason"]
                    and operator == previous["operator"]
                )
                if previous["delta"] >= job.credits_used or same_again:
                    return RefundOutcome(
                        job,
                        False,
                        job.refunded_credits,
                        before,
                        previous["reason"],
                        previous["operator"],
                        dry_run=dry_run,
                        balance_before=before,
                    )
                raise RefusedError(
                    f"job {job_id} was already refunded {previous['delta']} of the"
                    f" {job.credits_used} credits it used ({previous['reason'] or 'no reason'},"
                    f" by {previous['operator'] or 'nobody'})",
                    code="already_refunded",
                    hint="a job is refunded at most once; if more is owed, use: videogen grant",
                )
            amount = refund_amount(job, credits)
            if dry_run:
                return RefundOutcome(
                    dataclasses.replace(job, refunded_credits=amount),
                    True,
                    amount,
                    before + amount,
                    reason,
                    operator,
                    dry_run=True,
                    balance_before=before,
                )
            now = _now()
            db.execute(
                "update video_jobs set refunded_credits = ?, updated_at = ? where job_id = ?",
                (amount, now, job_id),
            )
            balance = self._refund(db, job, amount, reason, operator, now)
            return RefundOutcome(
                _job(self._job_row(db, job_id)),
                True,
                amount,
                balance,
                reason,
                operator,
                balance_before=before,
            )

    # --- reconciliation ------------------------------------------------------------------
    def list_unfinished_jobs(self, older_than_seconds: float, limit: int) -> list[Job]:
        check_seconds(older_than_seconds, "the age of unfinished jobs")
        if limit < 0:
            raise UsageError("the limit must be a number >= 0")
        rows = self._db.execute(
            "select * from video_jobs where status in ('pending', 'processing')"
            " and created_at <= ? order by created_at, job_id limit ?",
            (_ago(older_than_seconds), limit),
        )
        return [_job(r) for r in rows]

    def sweep_stranded(
        self, grace_seconds: float, *, limit: int | None = None, dry_run: bool = False
    ) -> StrandedSweep:
        check_seconds(grace_seconds, "the grace period")
        if limit is not None and limit < 0:
            raise UsageError("the limit must be a number >= 0")
        # One BEGIN IMMEDIATE transaction: concurrent sweepers (and `status`) queue on the
        # file lock and find the jobs failed, so each credit moves once.
        with self._tx() as db:
            rows = db.execute(
                "select * from video_jobs where status = 'pending'"
                " and provider_request_id is null and created_at < ?"
                " order by created_at, job_id limit ?",
                (_ago(grace_seconds), -1 if limit is None else limit),
            ).fetchall()
            jobs = [_job(r) for r in rows]
            if not dry_run:
                for job in jobs:
                    self._fail(db, job, NEVER_SUBMITTED)
            return StrandedSweep(
                swept=len(jobs),
                refunded_credits=sum(j.credits_used - j.refunded_credits for j in jobs),
                job_ids=tuple(j.job_id for j in jobs),
                dry_run=dry_run,
            )

    # --- helpers inside a transaction ----------------------------------------------------
    def _fail(self, db: sqlite3.Connection, job: Job, error: str) -> Job:
        """Fail a non-terminal job and refund what it used, once (terminal: unchanged)."""
        if job.status.terminal:
            return job
        now = _now()
        owed = job.credits_used - job.refunded_credits
        db.execute(
            "update video_jobs set status = 'failed', error = ?, queue_position = null,"
            " refunded_credits = credits_used, updated_at = ? where job_id = ?",
            (error, now, job.job_id),
        )
        if owed > 0:
            self._refund(db, job, owed, f"job failed: {error}", SYSTEM_OPERATOR, now)
        return _job(self._job_row(db, job.job_id))

    def _refund(
        self, db: sqlite3.Connection, job: Job, amount: int, reason: str, operator: str, now: str
    ) -> int:
        db.execute(
            "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator,"
            " created_at) values (?, ?, ?, 'refund', ?, ?, ?)",
            (job.user_id, job.job_id, amount, reason, operator, now),
        )
        db.execute(
            "update user_credits set balance = balance + ?, updated_at = ? where user_id = ?",
            (amount, now, job.user_id),
        )
        return self._balance_in(db, job.user_id)

    def _job_row(self, db: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        row = db.execute("select * from video_jobs where job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"job {job_id} not found", code="job_not_found")
        return row  # type: ignore[no-any-return]

    def _balance_in(self, db: sqlite3.Connection, user_id: str) -> int:
        row = db.execute(
            "select balance from user_credits where user_id = ?", (user_id,)
        ).fetchone()
        return int(row[0]) if row else 0


def _ago(seconds: float) -> str:
    """The timestamp ``seconds`` before now, in the stored format (ISO text compares in
    time order); an age beyond the calendar is the earliest time."""
    try:
        return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC).isoformat()


def _model(row: sqlite3.Row) -> Model:
    return Model(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        endpoint_id=row["endpoint_id"],
        credits_per_second=row["credits_per_second"],
        requires_image=bool(row["requires_image"]),
        settings=settings_from_json(json.loads(row["allowed_settings"])),
        active=bool(row["active"]),
    )


def _job(row: Any) -> Job:
    return Job(
        job_id=row["job_id"],
        user_id=row["user_id"],
        model=row["model"],
        status=JobStatus(row["status"]),
        prompt=row["prompt"],
        settings=json.loads(row["settings"]),
        credits_used=row["credits_used"],
        refunded_credits=row["refunded_credits"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        image_url=row["image_url"],
        idempotency_key=row["idempotency_key"],
        endpoint_id=row["endpoint_id"],
        provider_request_id=row["provider_request_id"],
        status_url=row["status_url"],
        response_url=row["response_url"],
        cancel_url=row["cancel_url"],
        queue_position=row["queue_position"],
        video_url=row["video_url"],
        thumbnail_url=row["thumbnail_url"],
        error=row["error"],
        provider=row["provider"],
        provider_origin=row["provider_origin"],
        not_found_count=row["not_found_count"],
        submitted_at=datetime.fromisoformat(row["submitted_at"]) if row["submitted_at"] else None,
    )
