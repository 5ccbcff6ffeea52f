"""The seams between the core and its adapters.

`JobStore` is the storage seam. Every method that changes money is ONE atomic
operation with the same meaning in every store: the sandbox (SQLite) implements it
in Python inside one transaction, the Postgres and Supabase stores call one SQL
function of the same name (``videogen_<method>``). The contract test suite holds
every store to the rules written here. All methods are safe to call again with the
same arguments (a timed-out RPC has an unknown outcome, so retries must be harmless).

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
# and of every automatic refund). SQL: videogen_private.system_operator() in
# storage/sql/functions.sql; tests/backends/test_sandbox_twin.py keeps the two equal.
SYSTEM_OPERATOR = "videogen"
# The longest idempotency key any store accepts (generate's keys and grant keys alike;
# the shortest is 1 character at the store). The SQL checks spell the number out
# (storage/sql/): tests/backends/test_sandbox_twin.py pins every one of them to this.
KEY_MAX_LENGTH = 255
# The error (and refund reason suffix) of a job charged but never handed to a provider.
NEVER_SUBMITTED = "never submitted to the provider (the submitting process stopped); refunded"


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

    def list_jobs(self, user_id: str | None = None, limit: int = 20) -> list[Job]:
        """Newest first, optionally for one user."""
        ...

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        """The stored record for this key, or None."""
        ...

    def list_ledger(self, user_id: str, limit: int = 50) -> list[LedgerEntry]:
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
        """Add ``credits`` (>= 1) to the user, creating the account when new.

        Writes one ``grant`` ledger row (no job) with reason and operator. Without a key
        each call is a new grant. With ``idempotency_key``: the first call grants and
        records the key (``granted_now=True``); any later call with the same key moves
        nothing and answers ``granted_now=False`` with the stored grant and the current
        balance, whatever its other arguments (grant keys are their own namespace,
        separate from generate's keys).
        """
        ...

    def create_job(self, new: NewJob) -> CreateJobResult:
        """Claim the idempotency key, debit credits and insert the job, atomically.

        - Key unknown: debit ``new.cost`` from the user (never below 0), insert the job
          (status ``pending``, ``credits_used = cost``), the idempotency record (with
          ``new.request``) and one ``charge`` ledger row (delta ``-cost``, reason
          ``"generate"``, operator ``SYSTEM_OPERATOR``). Returns ``replayed=False`` and
          the balance after the debit.
        - Key known with the same fingerprint: change nothing, return that job,
          ``replayed=True`` and the user's current balance.
        - Key known with another fingerprint: ``RefusedError("idempotency_key_reused")``.
        - Unknown user: ``NotFoundError("user_not_found")``.
        - Balance < cost: ``RefusedError("insufficient_credits")``; nothing is written.
        Keys are global (one key, one job); the fingerprint covers the user, so the same
        key from another user is a different request and is refused.
        Concurrent calls with one key: exactly one debit, all others replay.
        """
        ...

    def record_submission(
        self, job_id: str, endpoint_id: str, submission: Submission, provider: ProviderIdentity
    ) -> Job:
        """Store fal's request id and URLs, and who took the job, on a pending job that
        has no request id yet.

        Returns the job after the call. If the job already has a request id, or is no
        longer pending (e.g. it was failed as never-submitted meanwhile), nothing is
        changed and the job is returned as it is; the caller compares request ids.
        """
        ...

    def note_not_found(self, job_id: str) -> Job:
        """Count one "not found" answer from the job's own provider (no money moves).

        Increments ``not_found_count`` of a non-terminal job and returns the job; a
        terminal job is returned unchanged. ``apply_status`` resets the count to 0.
        """
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
        """Move a non-terminal job to ``pending``, ``processing`` or ``completed``.

        ``pending`` keeps ``queue_position``; ``processing`` clears it; ``completed``
        sets ``video_url`` (and ``thumbnail_url``) and clears it. A terminal job is
        returned unchanged (first terminal state wins). ``failed`` is not accepted here:
        use ``fail_job``.
        """
        ...

    def fail_job(self, job_id: str, error: str) -> Job:
        """Mark a non-terminal job ``failed`` and refund its credits, exactly once.

        Writes one ``refund`` ledger row (delta ``+credits_used - refunded_credits``,
        reason ``"job failed: <error>"``, operator ``SYSTEM_OPERATOR``), adds it to the
        balance and sets ``refunded_credits = credits_used``. A job that is already
        terminal is returned unchanged, so any number of concurrent callers refund once.
        """
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
        """Operator refund of a terminal job: at most one refund per job.

        - Unknown job: ``NotFoundError("job_not_found")``.
        - Job ``pending``/``processing``: ``RefusedError("job_not_refundable")``.
        - Job already refunded in full (any refund ledger row covering all it used,
          including the automatic one of a failed job): nothing moves,
          ``refunded_now=False`` (exit 0).
        - Job already refunded in part: ``RefusedError("already_refunded")`` whose
          message names the amount already refunded (exit 4), except a repeat of the
          very same refund (same credits, reason and operator: a retry after a lost
          answer), which answers like the full case (``refunded_now=False``).
        - ``credits`` None means all of ``credits_used``; ``credits`` > ``credits_used``:
          ``RefusedError("refund_exceeds_credits")``; ``credits`` < 1 is a ``UsageError``.
        - Otherwise one ``refund`` ledger row with reason and operator, balance raised,
          ``refunded_credits`` set, ``refunded_now=True``.
        ``dry_run``: every check above, and the answer the call would give
        (``dry_run=True``, ``refunded_now`` as it would be, ``balance`` as it would be
        after), with nothing written. ``balance_before`` is always set.
        """
        ...

    def list_unfinished_jobs(self, older_than_seconds: float, limit: int) -> list[Job]:
        """Jobs not yet terminal, created at least ``older_than_seconds`` ago, oldest
        first, at most ``limit`` (what `videogen reconcile` sweeps)."""
        ...

    def sweep_stranded(
        self, grace_seconds: float, *, limit: int | None = None, dry_run: bool = False
    ) -> StrandedSweep:
        """Fail and refund, exactly once, every job charged but never submitted (pending,
        no provider request id) created more than ``grace_seconds`` ago.

        The SQL function is ``public.videogen_sweep_stranded(grace interval)``; it skips
        rows locked by a concurrent caller (``FOR UPDATE SKIP LOCKED``), so any number of
        sweepers at once move each credit once. Error text: ``NEVER_SUBMITTED`` below.
        """
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
