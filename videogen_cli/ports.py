"""The seams between the core and its adapters.

`JobStore` is the storage seam. Every method is ONE call of the SQL function of the
same name, ``videogen_<method>`` in storage/sql/functions.sql, where its rules live:
the Postgres and Supabase stores call the function, the sandbox (SQLite) calls its
Python twin (storage/sandbox_functions.py) inside one transaction, and all three map the
answers to domain records in one place (storage/sqlfunc.py). The contract test suite
(tests/backends/test_store_contract.py) compares the stores' raw answers. All methods
are safe to call again with the same arguments (a timed-out RPC has an unknown outcome,
so retries must be harmless).

Errors raised by stores (from ``videogen_cli.errors``):

- ``NotFoundError(code="user_not_found" | "job_not_found" | "model_not_found")``
- ``RefusedError(code="insufficient_credits" | "idempotency_key_reused" |
  "refund_exceeds_credits" | "job_not_refundable")``
- ``UsageError`` for malformed input the store detects (e.g. a non-UUID id)
- ``BackendError`` for anything about reaching or using the database itself.
"""

from __future__ import annotations

from typing import Protocol

from videogen_cli.domain import (
    CreateJobResult,
    GrantOutcome,
    IdempotencyRecord,
    Job,
    JobStatus,
    LedgerEntry,
    Model,
    NewJob,
    ProviderHandle,
    ProviderIdentity,
    ProviderResult,
    ProviderStatus,
    RefundOutcome,
    StrandedSweep,
    Submission,
)

# Who an automatic movement is attributed to in the ledger (the operator of every charge
# and of every automatic refund). storage/sql/functions.sql spells it out, and
# tests/backends/test_sandbox_twin.py pins each of those literals to this.
SYSTEM_OPERATOR = "videogen"
# The longest idempotency key any store accepts (generate's keys and grant keys alike;
# the shortest is 1 character at the store). The SQL checks and messages spell the number
# out (storage/sql/): tests/backends/test_sandbox_twin.py pins each of them to this.
KEY_MAX_LENGTH = 255
# The error (and refund reason suffix) of a job charged but never handed to a provider.
NEVER_SUBMITTED = "never submitted to the provider (the submitting process stopped); refunded"
# A job charged but never handed to a provider (the process died in between) is failed
# and refunded (sweep_stranded) once it is older than this: VIDEOGEN_SUBMIT_GRACE_SECONDS
# unless set. Generous, because a submit with its safe retries can legitimately take a
# minute. videogen_sweep_stranded's own default ('10 minutes') is pinned to it by
# tests/backends/test_sandbox_twin.py.
DEFAULT_SUBMIT_GRACE_SECONDS = 600.0
# How many rows a list gives when the caller names no limit: the defaults of
# videogen_list_jobs and videogen_list_ledger (test_sandbox_twin.py pins the SQL's).
DEFAULT_JOBS_LIMIT = 20
DEFAULT_LEDGER_LIMIT = 50


class JobStore(Protocol):
    """Storage seam. See the module docstring for the shared rules."""

    # Short name shown in outputs ("sandbox", "postgres", "supabase").
    backend_name: str

    # --- reads -------------------------------------------------------------------------
    def get_model(self, slug_or_id: str) -> Model | None:
        """The model with this slug or id (active or not), or None."""
        ...

    def list_models(self) -> list[Model]:
        """All models, ordered by slug."""
        ...

    def get_balance(self, user_id: str) -> int | None:
        """The user's credit balance, or None for an unknown user."""
        ...

    def get_job(self, job_id: str) -> Job | None:
        """The job, or None. A malformed id is simply not found."""
        ...

    def list_jobs(self, user_id: str | None = None, limit: int = DEFAULT_JOBS_LIMIT) -> list[Job]:
        """Newest first, optionally for one user."""
        ...

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        """The stored record for this key, or None."""
        ...

    def list_ledger(self, user_id: str, limit: int = DEFAULT_LEDGER_LIMIT) -> list[LedgerEntry]:
        """The user's ledger rows, newest first."""
        ...

    # --- money-moving operations (one transaction / one SQL function each) ------------
    def grant_credits(
        self,
        user_id: str,
        credits: int,
        reason: str,
        operator: str,
        idempotency_key: str | None = None,
    ) -> GrantOutcome:
        """Add ``credits`` (>= 1) to the user, creating the account; once per
        ``idempotency_key`` when one is given. Rules: ``public.videogen_grant_credits``."""
        ...

    def create_job(self, new: NewJob) -> CreateJobResult:
        """Claim the idempotency key, debit credits and insert the job, atomically; the
        same key and request again replays (nothing charged), another request with the
        key is refused. Rules and errors: ``public.videogen_create_job``."""
        ...

    def record_submission(
        self, job_id: str, endpoint_id: str, submission: Submission, provider: ProviderIdentity
    ) -> Job:
        """Store the provider's request id and URLs, and who took the job, on a
        pending job that has none yet; otherwise change nothing. Returns the job after the
        call (the caller compares request ids). Rules: ``public.videogen_record_submission``.
        """
        ...

    def note_not_found(self, job_id: str) -> Job:
        """Count one "not found" answer from the job's own provider (no money moves);
        a terminal job comes back unchanged. Rules: ``public.videogen_note_not_found``."""
        ...

    def apply_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        queue_position: int | None = None,
        video_url: str | None = None,
        thumbnail_url: str | None = None,
    ) -> Job:
        """Move a non-terminal job to ``pending``, ``processing`` or ``completed``
        (first terminal state wins; only a real change touches ``updated_at``). ``failed``
        is refused: use ``fail_job``. Rules: ``public.videogen_apply_status``."""
        ...

    def fail_job(self, job_id: str, error: str) -> Job:
        """Mark a non-terminal job ``failed`` and refund what it used, exactly once; a
        terminal job comes back unchanged. Rules: ``public.videogen_fail_job``."""
        ...

    def refund_job(
        self,
        job_id: str,
        credits: int | None,
        reason: str,
        operator: str,
        *,
        dry_run: bool = False,
    ) -> RefundOutcome:
        """Operator refund of a terminal job, at most one per job (``credits`` None:
        all it used); ``dry_run``: the same checks and answer, nothing written.
        ``balance_before`` is always set. Rules and errors: ``public.videogen_refund_job``.
        """
        ...

    def list_unfinished_jobs(self, older_than_seconds: float, limit: int) -> list[Job]:
        """Jobs not yet terminal, created at least ``older_than_seconds`` ago, oldest
        first, at most ``limit`` (what `videogen reconcile` syncs).
        Rules: ``public.videogen_list_unfinished_jobs``."""
        ...

    def sweep_stranded(
        self, grace_seconds: float, *, limit: int | None = None, dry_run: bool = False
    ) -> StrandedSweep:
        """Fail and refund, exactly once, every job charged but never submitted
        created more than ``grace_seconds`` ago (error text: ``NEVER_SUBMITTED``).
        Rules: ``public.videogen_sweep_stranded``."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent."""
        ...


class VideoProvider(Protocol):
    """Provider seam: fal's queue protocol (the real API or the simulator).

    Errors: ``RefusedError(code="provider_rejected")`` when fal definitively refused a
    submission (4xx); ``ProviderError`` for transport trouble, 429 and 5xx that outlived
    the adapter's safe retries, with ``code="provider_unavailable"`` (or
    ``"provider_auth"`` for 401/403, exit 5 either way).
    """

    name: str  # "fal" or "simulator"

    @property
    def identity(self) -> ProviderIdentity:
        """Who this provider is; stored on every job it takes (see ProviderIdentity).

        A property, not a plain attribute: the simulator reads its identity from its
        database on first use."""
        ...

    # Monotonic time after which no request may still be running: each HTTP timeout is
    # clipped to what is left (a watch deadline must not be overrun by one slow read).
    deadline: float | None

    def submit(self, endpoint_id: str, arguments: dict[str, object]) -> Submission:
        """POST the request to the queue. Retries only where no second job can result."""
        ...

    def status(self, handle: ProviderHandle) -> ProviderStatus:
        """GET the status; COMPLETED with error/error_type comes back with ``error`` set."""
        ...

    def result(self, handle: ProviderHandle) -> ProviderResult:
        """GET the result of a COMPLETED request: a video, or the job's own error (4xx).

        Timeouts, 429 and 5xx raise ``ProviderError`` (transient: never fail a job).
        """
        ...

    def cancel(self, handle: ProviderHandle) -> str:
        """PUT cancel; returns fal's status word (CANCELLATION_REQUESTED, ...)."""
        ...

    def close(self) -> None: ...


class Clock(Protocol):
    """Time, injected so tests never sleep for real."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...
