"""The sandbox's twin of storage/sql/functions.sql: one Python function per SQL function.

Each ``videogen_<method>`` below has the name, the ``p_...`` parameters (with their
defaults) and the place in the file of its SQL original, and comments that mirror the
SQL's. It answers exactly the JSON the SQL answers (ids as text, timestamps as
videogen_private.ts formats them, JSON null for "not found") and raises what the SQL
raises: ``SqlFunctionError(sqlstate 'PTxyz', message = machine code, detail, hint)``,
which SqliteStore maps through sqlfunc.error_from_sqlstate like the other stores map
theirs. The private helpers mirror ``videogen_private.*``.

The constants the SQL spells out ('videogen', 255, the never-submitted error) come from
ports.py here (SYSTEM_OPERATOR, KEY_MAX_LENGTH, NEVER_SUBMITTED); a test pins the SQL's
literals to them (tests/backends/test_sandbox_twin.py).

The tables are storage/sql/sandbox/schema.sql. The caller (SqliteStore._call) runs each
function inside one ``BEGIN IMMEDIATE`` transaction and rolls it back on any error:
SQLite then has one writer at a time, so the row locks (``for update``), advisory locks
and retry loops of the SQL have nothing to wait for here. ``Call.now`` is the one
timestamp of the call, as Postgres' now() is the transaction's.

When a rule changes, it changes in functions.sql and here; the store contract test
(tests/backends/test_store_contract.py, test_every_store_gives_the_same_raw_answers)
compares the raw answers of both, timestamps included.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from videogen_cli.ports import (
    DEFAULT_JOBS_LIMIT,
    DEFAULT_LEDGER_LIMIT,
    KEY_MAX_LENGTH,
    NEVER_SUBMITTED,
    SYSTEM_OPERATOR,
)

Row = sqlite3.Row
Json = Any


class SqlFunctionError(Exception):
    """What ``raise sqlstate 'PTxyz' using message, detail, hint`` raises in the SQL."""

    def __init__(
        self, sqlstate: str, message: str, detail: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(f"{sqlstate} {message}: {detail}")
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint


def _raise(sqlstate: str, message: str, detail: str, hint: str) -> NoReturn:
    raise SqlFunctionError(sqlstate, message, detail, hint)


@dataclass(frozen=True)
class Call:
    """One function call: its transaction's connection and its now()."""

    db: sqlite3.Connection
    now: datetime

    @property
    def now_ts(self) -> str:
        return format_ts(self.now)


# ---------------------------------------------------------------------------------------
# Internal helpers (videogen_private.*)
# ---------------------------------------------------------------------------------------

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_TS_LENGTH = len("2000-01-01T00:00:00.000000Z")


def as_uuid(p_value: str | None) -> str | None:
    """A text id as uuid (canonical lower-case text), or None when it is not a canonical
    UUID (so callers decide between "not found" and PT400 instead of failing)."""
    if isinstance(p_value, str) and _UUID.match(p_value):
        return p_value.lower()
    return None


def format_ts(value: datetime) -> str:
    value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}Z"
    )


def ts(p_value: str | None) -> str | None:
    """One timestamp format in every answer: UTC with 'Z', microseconds
    ('YYYY-MM-DDTHH:MM:SS.ffffffZ'). Stored timestamps already have it; any other ISO
    text (written by hand into the file) is read and formatted."""
    if p_value is None:
        return None
    if len(p_value) == _TS_LENGTH and p_value.endswith("Z") and p_value[10] == "T":
        return p_value
    parsed = datetime.fromisoformat(p_value)
    return format_ts(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _quote_literal(value: str | None) -> str:
    """format('%L', value): quote_literal, or the unquoted NULL."""
    if value is None:
        return "NULL"
    quoted = "'" + value.replace("'", "''") + "'"
    if "\\" in value:
        return "E" + quoted.replace("\\", "\\\\")
    return quoted


def _s(value: Any) -> str:
    """format('%s', value): the value's text, '' for NULL."""
    return "" if value is None else str(value)


def _coalesce(value: str | None, default: str) -> str:
    return default if value is None else value


def job_json(j: Row) -> dict[str, Json]:
    return {
        "job_id": j["job_id"],
        "user_id": j["user_id"],
        "model": j["model_slug"],
        "model_id": j["model_id"],
        "endpoint_id": j["endpoint_id"],
        "status": j["status"],
        "prompt": j["prompt"],
        "image_url": j["image_url"],
        "settings": json.loads(j["settings"]),
        "credits_used": j["credits_used"],
        "refunded_credits": j["refunded_credits"],
        "provider_request_id": j["provider_request_id"],
        "status_url": j["status_url"],
        "response_url": j["response_url"],
        "cancel_url": j["cancel_url"],
        "queue_position": j["queue_position"],
        "video_url": j["video_url"],
        "thumbnail_url": j["thumbnail_url"],
        "error": j["error"],
        "idempotency_key": j["idempotency_key"],
        "created_at": ts(j["created_at"]),
        "updated_at": ts(j["updated_at"]),
        "submitted_at": ts(j["submitted_at"]),
        "provider": j["provider"],
        "provider_origin": j["provider_origin"],
        "not_found_count": j["not_found_count"],
    }


def model_json(m: Row) -> dict[str, Json]:
    return {
        "id": m["id"],
        "slug": m["slug"],
        "name": m["name"],
        "endpoint_id": m["endpoint_id"],
        "credits_per_second": m["credits_per_second"],
        "requires_image": bool(m["requires_image"]),
        "allowed_settings": json.loads(m["allowed_settings"]),
        "active": bool(m["active"]),
    }


def ledger_json(l: Row) -> dict[str, Json]:  # noqa: E741 - the SQL's name
    return {
        "id": l["id"],
        "user_id": l["user_id"],
        "job_id": l["job_id"],
        "delta": l["delta"],
        "kind": l["kind"],
        "reason": l["reason"],
        "operator": l["operator"],
        "created_at": ts(l["created_at"]),
    }


def _job_row(c: Call, job_id: str | None) -> Row | None:
    row: Row | None = c.db.execute(
        "select * from video_jobs where job_id = ?", (job_id,)
    ).fetchone()
    return row


def _balance(c: Call, user_id: str) -> int | None:
    row = c.db.execute("select balance from user_credits where user_id = ?", (user_id,)).fetchone()
    return None if row is None else int(row[0])


def _job_not_found(p_job_id: str | None) -> NoReturn:
    _raise("PT404", "job_not_found", f"job {_s(p_job_id)} not found", "check the job id")


# Fail a job the caller has locked (SELECT ... FOR UPDATE) and refund what it used,
# exactly once: one 'refund' row "job failed: <error>" by SYSTEM_OPERATOR. A terminal
# job is returned unchanged. Shared by videogen_fail_job and videogen_sweep_stranded.
def fail_locked_job(c: Call, p_job: Row, p_error: str) -> Row:
    v_job = p_job
    if v_job["status"] in ("completed", "failed"):
        return v_job

    v_owed = v_job["credits_used"] - v_job["refunded_credits"]
    if v_owed > 0:
        inserted = c.db.execute(
            "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator,"
            " created_at) values (?, ?, ?, 'refund', ?, ?, ?)"
            " on conflict (job_id, kind) do nothing",
            (
                v_job["user_id"],
                v_job["job_id"],
                v_owed,
                "job failed: " + p_error,
                SYSTEM_OPERATOR,
                c.now_ts,
            ),
        ).rowcount
        if inserted:
            c.db.execute(
                "update user_credits set balance = balance + ?, updated_at = ? where user_id = ?",
                (v_owed, c.now_ts, v_job["user_id"]),
            )
        else:
            v_owed = 0  # a refund row exists already (cannot happen for a live job): no money

    c.db.execute(
        "update video_jobs set status = 'failed', error = ?, queue_position = null,"
        " refunded_credits = refunded_credits + ?, updated_at = ? where job_id = ?",
        (p_error, v_owed, c.now_ts, v_job["job_id"]),
    )
    row = _job_row(c, v_job["job_id"])
    assert row is not None
    return row


# ---------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------


# The model with this slug or id (active or not), or null.
def videogen_get_model(c: Call, p_slug_or_id: str | None) -> Json:
    row = c.db.execute(
        "select * from models where slug = ? or id = ? order by (slug = ?) desc limit 1",
        (p_slug_or_id, as_uuid(p_slug_or_id), p_slug_or_id),
    ).fetchone()
    return None if row is None else model_json(row)


# All models, ordered by slug.
def videogen_list_models(c: Call) -> Json:
    return [model_json(m) for m in c.db.execute("select * from models order by slug")]


# The balance (a JSON number), or null for an unknown (or malformed) user.
def videogen_get_balance(c: Call, p_user_id: str | None) -> Json:
    user = as_uuid(p_user_id)
    return None if user is None else _balance(c, user)


# The job, or null; a malformed id is simply not found.
def videogen_get_job(c: Call, p_job_id: str | None) -> Json:
    row = _job_row(c, as_uuid(p_job_id))
    return None if row is None else job_json(row)


# Newest first; p_user_id null or '' lists every user's jobs.
def videogen_list_jobs(
    c: Call, p_user_id: str | None = None, p_limit: int | None = DEFAULT_JOBS_LIMIT
) -> Json:
    v_user = as_uuid(p_user_id)
    if p_limit is None or p_limit < 0:
        _raise(
            "PT400",
            "invalid_input",
            "the limit must be a number >= 0",
            "pass a limit such as 20",
        )
    if (p_user_id or "") != "" and v_user is None:
        return []  # a malformed user id has no jobs
    if v_user is None:
        rows = c.db.execute(
            "select * from video_jobs order by created_at desc, job_id desc limit ?", (p_limit,)
        )
    else:
        rows = c.db.execute(
            "select * from video_jobs where user_id = ?"
            " order by created_at desc, job_id desc limit ?",
            (v_user, p_limit),
        )
    return [job_json(j) for j in rows]


# The stored record for this key, or null.
def videogen_get_idempotency_record(c: Call, p_key: str | None) -> Json:
    k = c.db.execute("select * from idempotency_keys where key = ?", (p_key,)).fetchone()
    if k is None:
        return None
    return {
        "key": k["key"],
        "user_id": k["user_id"],
        "fingerprint": k["fingerprint"],
        "job_id": k["job_id"],
        "request": json.loads(k["request"]),
        "created_at": ts(k["created_at"]),
    }


# The user's ledger rows, newest first ([] for an unknown user).
def videogen_list_ledger(
    c: Call, p_user_id: str | None, p_limit: int | None = DEFAULT_LEDGER_LIMIT
) -> Json:
    if p_limit is None or p_limit < 0:
        _raise(
            "PT400",
            "invalid_input",
            "the limit must be a number >= 0",
            "pass a limit such as 50",
        )
    rows = c.db.execute(
        "select * from credit_ledger where user_id = ? order by id desc limit ?",
        (as_uuid(p_user_id), p_limit),
    )
    return [ledger_json(entry) for entry in rows]


# ---------------------------------------------------------------------------------------
# Money-moving operations: each is one transaction (SqliteStore._call), so any raise
# undoes everything it did.
# ---------------------------------------------------------------------------------------


def _check_key_length(key: str | None, hint: str) -> None:
    if key is None or not 1 <= len(key) <= KEY_MAX_LENGTH:
        _raise(
            "PT400",
            "invalid_input",
            f"the idempotency key must be 1 to {KEY_MAX_LENGTH} characters",
            hint,
        )


# Add credits (>= 1), creating the account when new; one 'grant' ledger row.
# Returns {"user_id", "granted", "granted_now", "balance", "reason", "operator",
# "idempotency_key", "ledger_id"}.
# Without a key each call is a new grant. With p_idempotency_key (1-255 characters) the
# first call grants and keeps the key on its ledger row; every later call with that key,
# whatever its other arguments, moves nothing and answers granted_now = false with the
# stored grant and the user's current balance. Grant keys are their own namespace,
# apart from generate's idempotency keys.
def videogen_grant_credits(
    c: Call,
    p_user_id: str | None,
    p_credits: int | None,
    p_reason: str | None,
    p_operator: str | None,
    p_idempotency_key: str | None = None,
) -> Json:
    v_user = as_uuid(p_user_id)
    if v_user is None:
        _raise(
            "PT400",
            "invalid_input",
            f"user id {_quote_literal(p_user_id)} is not a UUID",
            "pass the user's UUID (auth.users.id)",
        )
    if p_credits is None or p_credits < 1:
        _raise(
            "PT400",
            "invalid_input",
            "credits to grant must be at least 1",
            "pass a positive number of credits",
        )
    if p_idempotency_key is not None:
        _check_key_length(p_idempotency_key, "use a UUID or a name such as ci-fund-<run id>")

    if p_idempotency_key is not None:
        # Calls with one key queue on the file lock until the first commits, then find
        # its row below. (The unique index on credit_ledger.idempotency_key is the
        # backstop.)
        v_previous = c.db.execute(
            "select * from credit_ledger where idempotency_key = ?", (p_idempotency_key,)
        ).fetchone()
        if v_previous is not None:
            return {
                "user_id": v_previous["user_id"],
                "granted": v_previous["delta"],
                "granted_now": False,
                "balance": _balance(c, v_previous["user_id"]),
                "reason": v_previous["reason"],
                "operator": v_previous["operator"],
                "idempotency_key": v_previous["idempotency_key"],
                "ledger_id": v_previous["id"],
            }

    c.db.execute(
        "insert into user_credits (user_id, balance, created_at, updated_at)"
        " values (?, ?, ?, ?) on conflict (user_id) do update"
        " set balance = balance + excluded.balance, updated_at = excluded.updated_at",
        (v_user, p_credits, c.now_ts, c.now_ts),
    )
    v_balance = _balance(c, v_user)

    v_ledger_id = c.db.execute(
        "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator,"
        " created_at, idempotency_key) values (?, null, ?, 'grant', ?, ?, ?, ?)",
        (v_user, p_credits, p_reason, p_operator, c.now_ts, p_idempotency_key),
    ).lastrowid

    return {
        "user_id": v_user,
        "granted": p_credits,
        "granted_now": True,
        "balance": v_balance,
        "reason": p_reason,
        "operator": p_operator,
        "idempotency_key": p_idempotency_key,
        "ledger_id": v_ledger_id,
    }


# Claim the idempotency key, debit credits and insert the job, atomically.
# Returns {"job": <job>, "replayed": bool, "balance": n}.
#   key unknown                -> debit, job (pending), key record, 'charge' row
#   key known, same fingerprint -> nothing changes; that job, replayed, current balance
#   key known, other fingerprint -> PT422 idempotency_key_reused
#   unknown model / user        -> PT404 model_not_found / user_not_found
#   balance < cost              -> PT402 insufficient_credits (the raise undoes the claim:
#                                  nothing is written, a retry with the key runs afresh)
# The caller (the core) validates settings and computes p_cost from the model.
def videogen_create_job(
    c: Call,
    p_user_id: str | None,
    p_idempotency_key: str | None,
    p_fingerprint: str | None,
    p_model: str | None,
    p_prompt: str | None,
    p_image_url: str | None,
    p_settings: Json,
    p_cost: int | None,
    p_request: Json,
) -> Json:
    v_user = as_uuid(p_user_id)
    v_job_id = str(uuid.uuid4())
    _check_key_length(p_idempotency_key, "use a UUID as the idempotency key")
    if v_user is None:
        _raise(
            "PT400",
            "invalid_input",
            f"user id {_quote_literal(p_user_id)} is not a UUID",
            "pass the user's UUID (auth.users.id)",
        )
    if (p_fingerprint or "") == "" or p_prompt is None or p_model is None:
        _raise(
            "PT400",
            "invalid_input",
            "fingerprint, model and prompt are required",
            "send the whole request",
        )
    if p_cost is None or p_cost < 1:
        _raise(
            "PT400",
            "invalid_input",
            "the cost must be at least 1 credit",
            "compute the cost from the model",
        )

    # 1. Claim the key. (One writer at a time holds the file: the key cannot change
    # hands between the two statements, so the SQL's retry loop has nothing to retry.)
    v_claimed = c.db.execute(
        "insert into idempotency_keys (key, user_id, fingerprint, job_id, request, created_at)"
        " values (?, ?, ?, ?, ?, ?) on conflict (key) do nothing",
        (
            p_idempotency_key,
            v_user,
            p_fingerprint,
            v_job_id,
            # Stored with sorted keys, as the sandbox always has (replay-key --show).
            json.dumps(p_request if p_request is not None else {}, sort_keys=True),
            c.now_ts,
        ),
    ).rowcount
    if not v_claimed:
        v_record = c.db.execute(
            "select * from idempotency_keys where key = ?", (p_idempotency_key,)
        ).fetchone()
        if v_record["fingerprint"] != p_fingerprint:
            _raise(
                "PT422",
                "idempotency_key_reused",
                "this idempotency key was first used with a different request",
                "use a new --idempotency-key for a new request",
            )
        v_job = _job_row(c, v_record["job_id"])
        return {
            "job": None if v_job is None else job_json(v_job),
            "replayed": True,
            "balance": _balance(c, v_record["user_id"]),
        }

    # 2. The model (the core checked that it is active and the settings allowed).
    v_model = c.db.execute(
        "select * from models where slug = ? or id = ? order by (slug = ?) desc limit 1",
        (p_model, as_uuid(p_model), p_model),
    ).fetchone()
    if v_model is None:
        _raise(
            "PT404",
            "model_not_found",
            f"model {_s(p_model)} not found",
            "list the models with: videogen models",
        )

    # 3. Debit, never below zero.
    debited = c.db.execute(
        "update user_credits set balance = balance - ?, updated_at = ?"
        " where user_id = ? and balance >= ?",
        (p_cost, c.now_ts, v_user, p_cost),
    ).rowcount
    v_balance = _balance(c, v_user)
    if not debited:
        if v_balance is None:
            _raise(
                "PT404",
                "user_not_found",
                f"user {v_user} not found",
                "grant the user credits first",
            )
        _raise(
            "PT402",
            "insufficient_credits",
            f"insufficient credits: the job costs {p_cost}, the balance is {v_balance}",
            "grant credits to the user or choose a shorter duration",
        )

    # 4. The job and its charge, in the same transaction as the debit.
    c.db.execute(
        "insert into video_jobs (job_id, user_id, model_id, model_slug, endpoint_id, prompt,"
        " image_url, settings, status, credits_used, idempotency_key, created_at, updated_at)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        (
            v_job_id,
            v_user,
            v_model["id"],
            v_model["slug"],
            v_model["endpoint_id"],
            p_prompt,
            p_image_url,
            json.dumps(p_settings if p_settings is not None else {}, sort_keys=True),
            p_cost,
            p_idempotency_key,
            c.now_ts,
            c.now_ts,
        ),
    )
    c.db.execute(
        "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator, created_at)"
        " values (?, ?, ?, 'charge', 'generate', ?, ?)",
        (v_user, v_job_id, -p_cost, SYSTEM_OPERATOR, c.now_ts),
    )
    v_job = _job_row(c, v_job_id)
    assert v_job is not None
    return {"job": job_json(v_job), "replayed": False, "balance": v_balance}


# Store fal's request id and URLs, and the provider that took the job (p_provider 'fal'
# or 'simulator', p_provider_origin its queue base URL or sandbox), on a pending job that
# has no request id yet; otherwise change nothing. Returns the job as it is after the
# call (the caller compares request ids).
def videogen_record_submission(
    c: Call,
    p_job_id: str | None,
    p_endpoint_id: str | None,
    p_request_id: str | None,
    p_status_url: str | None,
    p_response_url: str | None,
    p_cancel_url: str | None,
    p_queue_position: int | None,
    p_provider: str | None,
    p_provider_origin: str | None,
) -> Json:
    v_id = as_uuid(p_job_id)
    if (p_request_id or "") == "":
        _raise(
            "PT400",
            "invalid_input",
            "the provider request id is required",
            "pass fal's request_id",
        )
    if p_queue_position is not None and p_queue_position < 0:
        _raise(
            "PT400",
            "invalid_input",
            "the queue position must be >= 0",
            "pass fal's queue_position",
        )
    if (p_provider or "") == "" or (p_provider_origin or "") == "":
        _raise(
            "PT400",
            "invalid_input",
            "the provider and its origin are required",
            "pass the provider's name and queue base URL (or sandbox)",
        )

    # Only a pending job without a request id: a job failed meanwhile (never submitted)
    # is left alone.
    c.db.execute(
        "update video_jobs set provider_request_id = ?,"
        " endpoint_id = coalesce(?, endpoint_id), status_url = ?, response_url = ?,"
        " cancel_url = ?, queue_position = ?, provider = ?, provider_origin = ?,"
        " not_found_count = 0, submitted_at = ?, updated_at = ?"
        " where job_id = ? and status = 'pending' and provider_request_id is null",
        (
            p_request_id,
            p_endpoint_id,
            p_status_url,
            p_response_url,
            p_cancel_url,
            p_queue_position,
            p_provider,
            p_provider_origin,
            c.now_ts,
            c.now_ts,
            v_id,
        ),
    )
    v_job = _job_row(c, v_id)
    if v_job is None:
        _job_not_found(p_job_id)
    return job_json(v_job)


# Move a non-terminal job to pending / processing / completed. pending keeps the given
# queue position, processing and completed clear it; completed sets the video URLs.
# A terminal job is returned unchanged (first terminal state wins). 'failed' is refused:
# failing refunds, which is videogen_fail_job's job.
def videogen_apply_status(
    c: Call,
    p_job_id: str | None,
    p_status: str | None,
    p_queue_position: int | None = None,
    p_video_url: str | None = None,
    p_thumbnail_url: str | None = None,
) -> Json:
    v_id = as_uuid(p_job_id)
    if p_status is None or p_status not in ("pending", "processing", "completed"):
        _raise(
            "PT400",
            "invalid_input",
            f"status {_quote_literal(p_status)} is not pending, processing or completed",
            "fail a job with videogen_fail_job: it refunds the credits",
        )
    if p_queue_position is not None and p_queue_position < 0:
        _raise(
            "PT400",
            "invalid_input",
            "the queue position must be >= 0",
            "pass fal's queue_position",
        )

    v_job = _job_row(c, v_id)
    if v_job is None:
        _job_not_found(p_job_id)
    if v_job["status"] in ("completed", "failed"):
        return job_json(v_job)

    v_queue = p_queue_position if p_status == "pending" else None
    # Only a real change touches the row, so polling does not rewrite updated_at. An
    # answer from the provider ends a run of "not found" answers: resetting the count is
    # a real change.
    if (
        v_job["status"],
        v_job["queue_position"],
        v_job["video_url"],
        v_job["thumbnail_url"],
        v_job["not_found_count"],
    ) != (p_status, v_queue, p_video_url, p_thumbnail_url, 0):
        c.db.execute(
            "update video_jobs set status = ?, queue_position = ?, video_url = ?,"
            " thumbnail_url = ?, not_found_count = 0, updated_at = ? where job_id = ?",
            (p_status, v_queue, p_video_url, p_thumbnail_url, c.now_ts, v_id),
        )
        v_job = _job_row(c, v_id)
        assert v_job is not None
    return job_json(v_job)


# Count one "not found" answer from the job's own provider: +1 on a non-terminal job
# (no money moves; the core fails the job only after repeated answers). A terminal job
# is returned unchanged. videogen_apply_status resets the count.
def videogen_note_not_found(c: Call, p_job_id: str | None) -> Json:
    v_id = as_uuid(p_job_id)
    c.db.execute(
        "update video_jobs set not_found_count = not_found_count + 1, updated_at = ?"
        " where job_id = ? and status in ('pending', 'processing')",
        (c.now_ts, v_id),
    )
    v_job = _job_row(c, v_id)
    if v_job is None:
        _job_not_found(p_job_id)
    return job_json(v_job)


# Mark a non-terminal job failed and refund what it used, exactly once. A terminal job
# is returned unchanged, so any number of callers refund once.
def videogen_fail_job(c: Call, p_job_id: str | None, p_error: str | None) -> Json:
    v_job = _job_row(c, as_uuid(p_job_id))
    if v_job is None:
        _job_not_found(p_job_id)
    return job_json(fail_locked_job(c, v_job, p_error if p_error is not None else "unknown error"))


# Operator refund of a terminal job, at most one per job.
# Returns {"job", "refunded_now", "refunded_credits", "balance", "balance_before",
# "reason", "operator", "dry_run"}.
#   job refunded in full before (any refund covering all it used, including the
#   automatic refund of a failed job)  -> nothing moves, refunded_now false, the earlier
#                                         refund's reason and operator
#   job refunded in part before        -> PT409 already_refunded naming the amount,
#                                         except the very same refund again (same credits,
#                                         reason, operator: a retry after a lost answer),
#                                         answered like the full case
#   job pending / processing           -> PT409 job_not_refundable
#   credits > credits used             -> PT422 refund_exceeds_credits
#   otherwise                          -> one 'refund' row, balance raised, refunded_now
# p_dry_run: every check, and the answer the call would give, with nothing written.
def videogen_refund_job(
    c: Call,
    p_job_id: str | None,
    p_credits: int | None,
    p_reason: str | None,
    p_operator: str | None,
    p_dry_run: bool | None = False,
) -> Json:
    v_id = as_uuid(p_job_id)
    v_dry_run = bool(p_dry_run)
    if p_credits is not None and p_credits < 1:
        _raise(
            "PT400",
            "invalid_input",
            "credits to refund must be at least 1",
            "omit the amount to refund everything the job used",
        )

    v_job = _job_row(c, v_id)
    if v_job is None:
        _job_not_found(p_job_id)
    v_before = _balance(c, v_job["user_id"])

    v_previous = c.db.execute(
        "select * from credit_ledger where job_id = ? and kind = 'refund'", (v_job["job_id"],)
    ).fetchone()
    if v_previous is not None:
        credits = p_credits if p_credits is not None else v_job["credits_used"]
        if v_previous["delta"] >= v_job["credits_used"] or (
            credits == v_previous["delta"]
            and p_reason == v_previous["reason"]
            and p_operator == v_previous["operator"]
        ):
            return {
                "job": job_json(v_job),
                "refunded_now": False,
                "refunded_credits": v_job["refunded_credits"],
                "balance": v_before,
                "balance_before": v_before,
                "reason": v_previous["reason"],
                "operator": v_previous["operator"],
                "dry_run": v_dry_run,
            }
        _raise(
            "PT409",
            "already_refunded",
            f"job {v_job['job_id']} was already refunded {v_previous['delta']} of the"
            f" {v_job['credits_used']} credits it used"
            f" ({_coalesce(v_previous['reason'], 'no reason')},"
            f" by {_coalesce(v_previous['operator'], 'nobody')})",
            "a job is refunded at most once; if more is owed, use: videogen grant",
        )

    if v_job["status"] not in ("completed", "failed"):
        _raise(
            "PT409",
            "job_not_refundable",
            f"job {v_job['job_id']} is still {v_job['status']}; only finished jobs are refunded",
            f"wait for it: videogen watch {v_job['job_id']}",
        )

    v_amount = p_credits if p_credits is not None else v_job["credits_used"]
    if v_amount > v_job["credits_used"]:
        _raise(
            "PT422",
            "refund_exceeds_credits",
            f"cannot refund {v_amount} credits: the job used {v_job['credits_used']}",
            f"use --credits {v_job['credits_used']} or less",
        )

    if v_dry_run:
        job = job_json(v_job)
        job["refunded_credits"] = v_amount  # the job as the refund would leave it; not stored
        return {
            "job": job,
            "refunded_now": True,
            "refunded_credits": v_amount,
            "balance": (v_before or 0) + v_amount,
            "balance_before": v_before,
            "reason": p_reason,
            "operator": p_operator,
            "dry_run": True,
        }

    # The unique (job_id, kind) is the backstop should anything bypass the file lock.
    inserted = c.db.execute(
        "insert into credit_ledger (user_id, job_id, delta, kind, reason, operator, created_at)"
        " values (?, ?, ?, 'refund', ?, ?, ?) on conflict (job_id, kind) do nothing",
        (v_job["user_id"], v_job["job_id"], v_amount, p_reason, p_operator, c.now_ts),
    ).rowcount
    if not inserted:
        _raise(
            "PT409",
            "job_not_refundable",
            "a concurrent refund of this job won",
            "read the job again",
        )

    c.db.execute(
        "update user_credits set balance = balance + ?, updated_at = ? where user_id = ?",
        (v_amount, c.now_ts, v_job["user_id"]),
    )
    v_balance = _balance(c, v_job["user_id"])

    c.db.execute(
        "update video_jobs set refunded_credits = ?, updated_at = ? where job_id = ?",
        (v_amount, c.now_ts, v_job["job_id"]),
    )
    v_job = _job_row(c, v_job["job_id"])
    assert v_job is not None

    return {
        "job": job_json(v_job),
        "refunded_now": True,
        "refunded_credits": v_amount,
        "balance": v_balance,
        "balance_before": v_before,
        "reason": p_reason,
        "operator": p_operator,
        "dry_run": False,
    }


# ---------------------------------------------------------------------------------------
# Reconciliation: nothing is left to a person
# ---------------------------------------------------------------------------------------


def _before(c: Call, age: timedelta) -> str:
    """now() - age in the stored format; Postgres' 22008 when that leaves the calendar."""
    try:
        return format_ts(c.now - age)
    except OverflowError:
        raise SqlFunctionError("22008", "timestamp out of range") from None


# Jobs not yet terminal created at least p_older_than_seconds ago, oldest first, at most
# p_limit: what `videogen reconcile` syncs with each job's own provider.
def videogen_list_unfinished_jobs(
    c: Call, p_older_than_seconds: float | None, p_limit: int | None
) -> Json:
    if (
        p_older_than_seconds is None
        or p_older_than_seconds < 0
        or not math.isfinite(p_older_than_seconds)
    ):
        _raise(
            "PT400",
            "invalid_input",
            "the age must be a finite number of seconds >= 0",
            "pass e.g. 60",
        )
    if p_limit is None or p_limit < 0:
        _raise(
            "PT400",
            "invalid_input",
            "the limit must be a number >= 0",
            "pass a limit such as 100",
        )
    try:
        age = timedelta(seconds=p_older_than_seconds)
    except OverflowError:
        raise SqlFunctionError("22008", "interval out of range") from None
    rows = c.db.execute(
        "select * from video_jobs where status in ('pending', 'processing')"
        " and created_at <= ? order by created_at, job_id limit ?",
        (_before(c, age), p_limit),
    )
    return [job_json(j) for j in rows]


_INTERVAL_PART = re.compile(r"\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*([a-z]+)\s*", re.I)
_INTERVAL_UNITS = {
    "microsecond": 1e-6,
    "microseconds": 1e-6,
    "millisecond": 1e-3,
    "milliseconds": 1e-3,
    "second": 1,
    "seconds": 1,
    "sec": 1,
    "secs": 1,
    "s": 1,
    "minute": 60,
    "minutes": 60,
    "min": 60,
    "mins": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
    "week": 604800,
    "weeks": 604800,
}


def _interval(value: str | timedelta) -> timedelta:
    """An ``interval`` argument: a timedelta, or Postgres' text such as '10 minutes' or
    '600.000000 seconds' (what SqlFunctionStore.sweep_stranded sends)."""
    if isinstance(value, timedelta):
        return value
    text, seconds, at = str(value), 0.0, 0
    while at < len(text):
        part = _INTERVAL_PART.match(text, at)
        unit = part and _INTERVAL_UNITS.get(part.group(2).lower())
        if part is None or unit is None:
            raise SqlFunctionError(
                "22007", f'invalid input syntax for type interval: "{text}"'
            ) from None
        seconds += float(part.group(1)) * unit
        at = part.end()
    if not text.strip():
        raise SqlFunctionError("22007", f'invalid input syntax for type interval: "{text}"')
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise SqlFunctionError("22008", "interval out of range") from None


# Fail and refund, exactly once, every job charged but never handed to a provider
# (pending, no provider request id) created more than `grace` ago: the submitting
# process stopped between the charge and the submit. Concurrent sweepers (and a
# `videogen status`, a late record_submission) queue on the file lock and find the jobs
# failed, so each credit moves once; a late submission finds the job failed and records
# nothing.
# p_dry_run: the same selection, nothing written.
# Returns {"swept", "refunded_credits", "job_ids", "dry_run"}.
# The error text is videogen_cli/ports.py NEVER_SUBMITTED (a test keeps the SQL's equal).
def videogen_sweep_stranded(
    c: Call,
    grace: str | timedelta | None = "10 minutes",
    p_limit: int | None = None,
    p_dry_run: bool | None = False,
) -> Json:
    v_error = NEVER_SUBMITTED
    v_dry_run = bool(p_dry_run)
    v_grace = None if grace is None else _interval(grace)
    if v_grace is None or v_grace < timedelta(0):
        _raise(
            "PT400",
            "invalid_input",
            "the grace period must be an interval >= 0",
            "pass e.g. '10 minutes'",
        )
    if p_limit is not None and p_limit < 0:
        _raise(
            "PT400",
            "invalid_input",
            "the limit must be a number >= 0 (or null: no limit)",
            "pass e.g. 100",
        )

    v_ids: list[str] = []
    v_credits = 0
    jobs = c.db.execute(
        "select * from video_jobs where status = 'pending' and provider_request_id is null"
        " and created_at < ? order by created_at, job_id limit ?",
        (_before(c, v_grace), -1 if p_limit is None else p_limit),
    ).fetchall()
    for v_job in jobs:
        v_credits += v_job["credits_used"] - v_job["refunded_credits"]
        v_ids.append(v_job["job_id"])
        if not v_dry_run:
            fail_locked_job(c, v_job, v_error)

    return {
        "swept": len(v_ids),
        "refunded_credits": v_credits,
        "job_ids": v_ids,
        "dry_run": v_dry_run,
    }


# Every public.videogen_* function, by name, in the order of functions.sql.
FUNCTIONS: dict[str, Callable[..., Json]] = {
    f.__name__: f
    for f in (
        videogen_get_model,
        videogen_list_models,
        videogen_get_balance,
        videogen_get_job,
        videogen_list_jobs,
        videogen_get_idempotency_record,
        videogen_list_ledger,
        videogen_grant_credits,
        videogen_create_job,
        videogen_record_submission,
        videogen_apply_status,
        videogen_note_not_found,
        videogen_fail_job,
        videogen_refund_job,
        videogen_list_unfinished_jobs,
        videogen_sweep_stranded,
    )
}
# The reads (the SQL's `stable` functions): each is one SELECT, which SQLite runs as a
# transaction of its own, so SqliteStore takes no write lock for them.
READS = frozenset(
    {
        "videogen_get_model",
        "videogen_list_models",
        "videogen_get_balance",
        "videogen_get_job",
        "videogen_list_jobs",
        "videogen_get_idempotency_record",
        "videogen_list_ledger",
        "videogen_list_unfinished_jobs",
    }
)
