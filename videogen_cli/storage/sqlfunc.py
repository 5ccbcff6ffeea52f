"""JobStore over the SQL functions of storage/sql/functions.sql.

Every JobStore method is one call of ``public.videogen_<method>`` with named ``p_...``
arguments; the function returns JSON, which this module turns into domain records. The
three stores differ only in ``_call`` and in how they read an error's SQLSTATE (psycopg
for Postgres, PostgREST RPC for Supabase, the functions' Python twin in
sandbox_functions.py for the sandbox), so all three share the mapping below.

Imports nothing beyond the standard library and videogen's own modules: this module is
loaded by the concrete stores only.
"""

from __future__ import annotations

import abc
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from videogen_cli.catalog import settings_from_json
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
from videogen_cli.errors import (
    BackendError,
    NotFoundError,
    RefusedError,
    UsageError,
    VideogenError,
)
from videogen_cli.ports import DEFAULT_JOBS_LIMIT, DEFAULT_LEDGER_LIMIT

if TYPE_CHECKING:
    from videogen_cli.ports import JobStore

MIGRATION_HINT = (
    "apply the migration: videogen db migrate "
    "(or videogen db sql > supabase/migrations/<ts>_videogen.sql)"
)

# A machine code raised by the functions (``message = 'job_not_found'``).
_MACHINE_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_MESSAGE = 300


class SqlFunctionStore(abc.ABC):
    """The JobStore methods, each one ``videogen_<method>`` call through ``_call``."""

    backend_name: str

    # --- transport -----------------------------------------------------------------------
    @abc.abstractmethod
    def _call(self, fn: str, args: dict[str, Any]) -> Any:
        """Call ``public.<fn>`` with named arguments; return its JSON, decoded.

        Must raise a ``VideogenError`` (see ``error_from_sqlstate``) for every failure.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections. Idempotent."""

    # --- reads ---------------------------------------------------------------------------
    def get_model(self, slug_or_id: str) -> Model | None:
        raw = self._call("videogen_get_model", {"p_slug_or_id": slug_or_id})
        return _model(raw) if raw is not None else None

    def list_models(self) -> list[Model]:
        return [_model(m) for m in _list(self._call("videogen_list_models", {}))]

    def get_balance(self, user_id: str) -> int | None:
        raw = self._call("videogen_get_balance", {"p_user_id": user_id})
        return int(raw) if raw is not None else None

    def get_job(self, job_id: str) -> Job | None:
        raw = self._call("videogen_get_job", {"p_job_id": job_id})
        return _job(raw) if raw is not None else None

    def list_jobs(self, user_id: str | None = None, limit: int = DEFAULT_JOBS_LIMIT) -> list[Job]:
        raw = self._call("videogen_list_jobs", {"p_user_id": user_id, "p_limit": limit})
        return [_job(j) for j in _list(raw)]

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        raw = self._call("videogen_get_idempotency_record", {"p_key": key})
        if raw is None:
            return None
        return IdempotencyRecord(
            key=str(raw["key"]),
            user_id=str(raw["user_id"]),
            fingerprint=str(raw["fingerprint"]),
            job_id=str(raw["job_id"]),
            request=dict(raw.get("request") or {}),
            created_at=parse_ts(raw["created_at"]),
        )

    def list_ledger(self, user_id: str, limit: int = DEFAULT_LEDGER_LIMIT) -> list[LedgerEntry]:
        raw = self._call("videogen_list_ledger", {"p_user_id": user_id, "p_limit": limit})
        return [_ledger(e) for e in _list(raw)]

    # --- money ---------------------------------------------------------------------------
    def grant_credits(
        self,
        user_id: str,
        credits: int,
        reason: str,
        operator: str,
        idempotency_key: str | None = None,
    ) -> GrantOutcome:
        raw = self._call(
            "videogen_grant_credits",
            {
                "p_user_id": user_id,
                "p_credits": credits,
                "p_reason": reason,
                "p_operator": operator,
                "p_idempotency_key": idempotency_key,
            },
        )
        return GrantOutcome(
            user_id=str(raw["user_id"]),
            granted=int(raw["granted"]),
            granted_now=bool(raw["granted_now"]),
            balance=int(raw["balance"]),
            reason=raw.get("reason"),
            operator=raw.get("operator"),
            idempotency_key=raw.get("idempotency_key"),
        )

    def create_job(self, new: NewJob) -> CreateJobResult:
        raw = self._call(
            "videogen_create_job",
            {
                "p_user_id": new.user_id,
                "p_idempotency_key": new.idempotency_key,
                "p_fingerprint": new.fingerprint,
                "p_model": new.model_slug,
                "p_prompt": new.prompt,
                "p_image_url": new.image_url,
                "p_settings": new.settings,
                "p_cost": new.cost,
                "p_request": new.request,
            },
        )
        return CreateJobResult(
            job=_job(raw["job"]), replayed=bool(raw["replayed"]), balance=int(raw["balance"])
        )

    def record_submission(
        self, job_id: str, endpoint_id: str, submission: Submission, provider: ProviderIdentity
    ) -> Job:
        raw = self._call(
            "videogen_record_submission",
            {
                "p_job_id": job_id,
                "p_endpoint_id": endpoint_id,
                "p_request_id": submission.request_id,
                "p_status_url": submission.status_url,
                "p_response_url": submission.response_url,
                "p_cancel_url": submission.cancel_url,
                "p_queue_position": submission.queue_position,
                "p_provider": provider.name,
                "p_provider_origin": provider.origin,
            },
        )
        return _job(raw)

    def note_not_found(self, job_id: str) -> Job:
        return _job(self._call("videogen_note_not_found", {"p_job_id": job_id}))

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
            # A caller bug; the SQL (and its sandbox twin) refuses it too (PT400).
            raise ValueError("use fail_job to fail a job: it refunds")
        raw = self._call(
            "videogen_apply_status",
            {
                "p_job_id": job_id,
                "p_status": JobStatus(status).value,
                "p_queue_position": queue_position,
                "p_video_url": video_url,
                "p_thumbnail_url": thumbnail_url,
            },
        )
        return _job(raw)

    def fail_job(self, job_id: str, error: str) -> Job:
        return _job(self._call("videogen_fail_job", {"p_job_id": job_id, "p_error": error}))

    def refund_job(
        self,
        job_id: str,
        credits: int | None,
        reason: str,
        operator: str,
        *,
        dry_run: bool = False,
    ) -> RefundOutcome:
        raw = self._call(
            "videogen_refund_job",
            {
                "p_job_id": job_id,
                "p_credits": credits,
                "p_reason": reason,
                "p_operator": operator,
                "p_dry_run": dry_run,
            },
        )
        return RefundOutcome(
            job=_job(raw["job"]),
            refunded_now=bool(raw["refunded_now"]),
            refunded_credits=int(raw["refunded_credits"]),
            balance=int(raw["balance"]),
            reason=raw.get("reason"),
            operator=raw.get("operator"),
            dry_run=bool(raw.get("dry_run", False)),
            balance_before=_opt_int(raw.get("balance_before")),
        )

    # --- reconciliation ------------------------------------------------------------------
    def list_unfinished_jobs(self, older_than_seconds: float, limit: int) -> list[Job]:
        check_seconds(older_than_seconds, "the age of unfinished jobs")
        raw = self._call(
            "videogen_list_unfinished_jobs",
            {"p_older_than_seconds": float(older_than_seconds), "p_limit": limit},
        )
        return [_job(j) for j in _list(raw)]

    def sweep_stranded(
        self, grace_seconds: float, *, limit: int | None = None, dry_run: bool = False
    ) -> StrandedSweep:
        check_seconds(grace_seconds, "the grace period")
        raw = self._call(
            "videogen_sweep_stranded",
            # An interval literal both transports pass as text (psycopg: an untyped
            # parameter; PostgREST: cast by the argument's declared type).
            {"grace": f"{grace_seconds:.6f} seconds", "p_limit": limit, "p_dry_run": dry_run},
        )
        return sweep_from_json(raw)


if TYPE_CHECKING:
    # mypy proves that the concrete stores satisfy the seam.
    def _is_job_store(store: SqlFunctionStore) -> JobStore:
        return store


# --- errors ------------------------------------------------------------------------------


def error_from_sqlstate(
    code: str | None,
    message: str | None,
    detail: Any = None,
    hint: str | None = None,
    *,
    backend: str,
    auth_hint: str,
    unavailable_hint: str,
    secrets: tuple[str, ...] = (),
) -> VideogenError:
    """The videogen error for a SQLSTATE (psycopg) or PostgREST ``code`` (supabase).

    ``message``/``detail``/``hint`` are the function's ``raise`` parts: for the PTxyz
    codes the message is a machine code from ports.py and the detail a human sentence.
    Every text is reduced to one line with the ``secrets`` masked.
    """
    code = (code or "").strip()
    msg = one_line(message, secrets)
    det = one_line(detail if isinstance(detail, str) else None, secrets)
    hnt = one_line(hint, secrets) or None
    machine = msg if _MACHINE_CODE.match(msg or "") else None
    human = det or msg or f"{backend} error {code}"

    if code == "PT404":
        return NotFoundError(human, code=machine or "not_found", hint=hnt)
    if code in ("PT402", "PT409", "PT422"):
        return RefusedError(human, code=machine or "refused", hint=hnt)
    if code == "PT400" or code.startswith("22"):
        return UsageError(human, code=machine or "invalid_input", hint=hnt)
    if code in ("42883", "PGRST202", "42P01", "PGRST205", "3F000"):
        return BackendError(
            f"the videogen functions are missing in the {backend} database ({code}: {msg})",
            code="migration_missing",
            hint=MIGRATION_HINT,
        )
    if code in ("42501", "PGRST301", "PGRST302", "PGRST303", "401", "403") or code.startswith("28"):
        return BackendError(
            f"{backend} refused the credentials ({code or 'auth'}: {msg})",
            code="backend_auth",
            hint=auth_hint,
        )
    # Connection classes, resource and shutdown errors, serialization/deadlock (rolled
    # back, so a retry is safe), PostgREST's pool errors and gateway pages (numeric 5xx).
    transient = code.startswith(("08", "53", "57", "40", "PGRST00")) or (
        code.isdigit() and code.startswith("5")
    )
    if transient:
        return BackendError(
            f"{backend} is unavailable ({code}: {msg})",
            code="backend_unavailable",
            hint=unavailable_hint,
        )
    if not code and msg and re.search(r"api key|jwt|apikey", msg, re.IGNORECASE):
        # A gateway's own 401 (e.g. Supabase's "Invalid API key") carries no code.
        return BackendError(
            f"{backend} refused the credentials: {msg}", code="backend_auth", hint=auth_hint
        )
    return BackendError(
        f"{backend} error {code or '(no code)'}: {msg or det or 'unknown error'}",
        code="backend_error",
        hint=f"if this persists, check that the migration is current: {MIGRATION_HINT}",
    )


# Ages and grace periods beyond this are typos, and beyond what SQLite's timestamps and
# Postgres' intervals both hold: refused alike by every store.
MAX_SECONDS = 100 * 366 * 24 * 3600


def check_seconds(value: float, what: str) -> None:
    """A duration argument of the reconciliation methods: finite, 0 to 100 years."""
    if (
        not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_SECONDS
    ):
        raise UsageError(
            f"{what} must be a number of seconds from 0 to {MAX_SECONDS}, not {value!r}",
            hint="pass e.g. 600",
        )


def sweep_from_json(raw: Any) -> StrandedSweep:
    """The answer of public.videogen_sweep_stranded."""
    if not isinstance(raw, dict):
        raise BackendError(
            "unexpected answer from the database: expected the sweep counts",
            code="backend_error",
            hint=MIGRATION_HINT,
        )
    return StrandedSweep(
        swept=int(raw["swept"]),
        refunded_credits=int(raw["refunded_credits"]),
        job_ids=tuple(str(j) for j in raw.get("job_ids") or ()),
        dry_run=bool(raw.get("dry_run", False)),
    )


def one_line(text: str | None, secrets: tuple[str, ...] = ()) -> str:
    """First line of ``text``, trimmed, with every secret masked."""
    if not text:
        return ""
    line = str(text).strip().splitlines()[0].strip() if str(text).strip() else ""
    for secret in secrets:
        if secret:
            line = line.replace(secret, "****")
    return line[:_MAX_MESSAGE]


# --- JSON -> domain ----------------------------------------------------------------------


def parse_ts(value: Any) -> datetime:
    """An ISO-8601 timestamp from the functions, as a tz-aware datetime."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BackendError(
            f"unexpected answer from the database: expected a list, got {type(raw).__name__}",
            code="backend_error",
            hint=MIGRATION_HINT,
        )
    return raw


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _job(raw: Any) -> Job:
    if not isinstance(raw, dict):
        raise BackendError(
            "unexpected answer from the database: expected a job object",
            code="backend_error",
            hint=MIGRATION_HINT,
        )
    return Job(
        job_id=str(raw["job_id"]),
        user_id=str(raw["user_id"]),
        model=str(raw["model"]),
        status=JobStatus(raw["status"]),
        prompt=str(raw["prompt"]),
        settings=dict(raw.get("settings") or {}),
        credits_used=int(raw["credits_used"]),
        refunded_credits=int(raw["refunded_credits"]),
        created_at=parse_ts(raw["created_at"]),
        updated_at=parse_ts(raw["updated_at"]),
        image_url=raw.get("image_url"),
        idempotency_key=raw.get("idempotency_key"),
        endpoint_id=raw.get("endpoint_id"),
        provider_request_id=raw.get("provider_request_id"),
        status_url=raw.get("status_url"),
        response_url=raw.get("response_url"),
        cancel_url=raw.get("cancel_url"),
        queue_position=_opt_int(raw.get("queue_position")),
        video_url=raw.get("video_url"),
        thumbnail_url=raw.get("thumbnail_url"),
        error=raw.get("error"),
        provider=raw.get("provider"),
        provider_origin=raw.get("provider_origin"),
        not_found_count=int(raw.get("not_found_count") or 0),
        submitted_at=parse_ts(raw["submitted_at"]) if raw.get("submitted_at") else None,
    )


def _model(raw: Any) -> Model:
    return Model(
        id=str(raw["id"]),
        slug=str(raw["slug"]),
        endpoint_id=str(raw["endpoint_id"]),
        credits_per_second=int(raw["credits_per_second"]),
        requires_image=bool(raw["requires_image"]),
        settings=settings_from_json(dict(raw.get("allowed_settings") or {})),
        active=bool(raw["active"]),
        name=str(raw.get("name") or ""),
    )


def _ledger(raw: Any) -> LedgerEntry:
    job_id = raw.get("job_id")
    return LedgerEntry(
        id=int(raw["id"]),
        user_id=str(raw["user_id"]),
        job_id=str(job_id) if job_id is not None else None,
        delta=int(raw["delta"]),
        kind=LedgerKind(raw["kind"]),
        reason=raw.get("reason"),
        operator=raw.get("operator"),
        created_at=parse_ts(raw["created_at"]),
    )
