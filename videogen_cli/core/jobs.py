"""Creating a job exactly once and keeping it in step with the provider.

`JobService.generate` is the backend's generate-video flow (README "Money rules")
and `JobService.refresh` its get-video-status flow. Neither knows about terminals: they
return records and raise `VideogenError`s.

Money safety rules enforced here (README "Each job stays with its provider"):
- a job is synced only through the provider that took it (`Job.provider_identity`);
  a process configured for another provider shows the stored job, never changes it;
- a "not found" from the job's own provider is never final from one answer: the job is
  failed and refunded only after `NOT_FOUND_LIMIT` consecutive ones (the store counts
  them in `note_not_found`; any other answer resets the count in `apply_status`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from videogen_cli.core.reports import CREDITS_LEDGER_ROWS, CreditsReport, JobList, ModelCatalog
from videogen_cli.core.requests import (
    PreparedRequest,
    check_idempotency_key,
    check_uuid,
    prepare_request,
)
from videogen_cli.domain import (
    GrantOutcome,
    IdempotencyRecord,
    Job,
    JobStatus,
    JsonDict,
    LedgerEntry,
    Model,
    NewJob,
    ProviderHandle,
    ProviderIdentity,
    ProviderState,
    ProviderStatus,
    RefundOutcome,
    StrandedSweep,
)
from videogen_cli.errors import NotFoundError, ProviderError, RefusedError, VideogenError
from videogen_cli.ports import (
    DEFAULT_JOBS_LIMIT,
    DEFAULT_LEDGER_LIMIT,
    DEFAULT_SUBMIT_GRACE_SECONDS,
    NEVER_SUBMITTED,
    Clock,
    JobStore,
    VideoProvider,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from videogen_cli.core.credits import GrantReport, GrantRequest
    from videogen_cli.core.reconcile import JobAction, ReconcileSummary
    from videogen_cli.core.refunds import RefundReport
    from videogen_cli.core.replay import ReplayVerdict
    from videogen_cli.core.watching import Backoff, WatchReporter, WatchResult

__all__ = [
    "NEVER_SUBMITTED",
    "NOT_FOUND_LIMIT",
    "GenerateOutcome",
    "JobService",
    "RefreshOutcome",
    "SystemClock",
]

# Consecutive "not found" answers from a job's own provider before the job is failed and
# refunded. One answer is never enough: a request fal has just queued, a proxy or a
# replica may answer 404 for a moment, and a refunded job that fal still runs is a video
# we pay for and nobody sees.
NOT_FOUND_LIMIT = 3


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class GenerateOutcome:
    job: Job
    idempotency_key: str
    replayed: bool
    balance: int
    # Set when the provider refused or could not be reached: the job is failed and
    # refunded, and the caller decides how loudly to say so.
    submit_error: VideogenError | None = None
    # Set when fal answered the submit with an error but named the request: the job is
    # kept and followed (see providers/fal.py); the caller may say so.
    notice: str | None = None

    def to_json(self) -> JsonDict:
        """The object `generate --json` prints (tests/test_cli.py
        `test_generate_prints_exactly_the_generate_object`)."""
        data: JsonDict = {
            "job_id": self.job.job_id,
            "status": self.job.status.value,
            "credits_used": self.job.credits_used,
            "idempotency_key": self.idempotency_key,
            "replayed": self.replayed,
            "balance": self.balance,
        }
        if self.job.error is not None:
            # A job refused or failed at submit says why, so a script need not call status.
            data["error"] = self.job.error
        return data


@dataclass(frozen=True)
class RefreshOutcome:
    job: Job
    # Transient provider trouble seen during this refresh: the job was left as it was.
    transient_error: str | None = None
    # False when the job belongs to another provider than the configured one: the stored
    # job is returned unchanged, and `not_synced_reason` says why (no secrets in it).
    synced: bool = True
    not_synced_reason: str | None = None
    # True when the job was found failed because another process failed (and refunded)
    # it at the same time: this call moved no credit (`reconcile` counts it as synced).
    failed_elsewhere: bool = False

    def to_json(self) -> JsonDict:
        """The object `status --json` prints: the job object, plus `synced: false` and
        `sync_reason` only for another provider's job (README "Each job stays with its
        provider")."""
        data = self.job.to_json()
        if not self.synced:
            data["synced"] = False
            data["sync_reason"] = self.not_synced_reason
        return data


def provider_handle(job: Job) -> ProviderHandle:
    """What the provider needs to follow a submitted job."""
    return ProviderHandle(
        endpoint_id=job.endpoint_id or "",
        request_id=job.provider_request_id or "",
        status_url=job.status_url,
        response_url=job.response_url,
        cancel_url=job.cancel_url,
    )


class JobService:
    """What everything above the core (the commands, `serve`, `smoke`) calls: a method
    per command, and the store stays private (`_store`). Where the core adds no rule of
    its own, a method hands the call to the store's operation of the same name, whose
    rules live in the store (SQL functions `videogen_*`)."""

    def __init__(
        self,
        store: JobStore,
        provider_factory: Callable[[], VideoProvider],
        *,
        clock: Clock | None = None,
        submit_grace_seconds: float = DEFAULT_SUBMIT_GRACE_SECONDS,
    ) -> None:
        self._store = store
        self._provider_factory = provider_factory
        self._provider: VideoProvider | None = None
        self._deadline: float | None = None
        self.clock: Clock = clock or SystemClock()
        self.submit_grace_seconds = submit_grace_seconds

    @property
    def provider(self) -> VideoProvider:
        """Built on first use: reading the database alone never needs the provider."""
        if self._provider is None:
            self._provider = self._provider_factory()
            self._provider.deadline = self._deadline
        return self._provider

    def set_deadline(self, monotonic_deadline: float | None) -> None:
        """No provider request may outlive this moment (a `watch --timeout`)."""
        self._deadline = monotonic_deadline
        if self._provider is not None:
            self._provider.deadline = monotonic_deadline

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
        self._store.close()

    @property
    def backend_name(self) -> str:
        """The store's kind ("sandbox", "postgres", "supabase"), for notes and reports."""
        return self._store.backend_name

    def swap_store(self, store: JobStore) -> JobStore:
        """Use ``store`` from now on and return the one used so far.

        `watch` wraps the store so its worker threads share it one call at a time
        (core/watching.py `_LockedStore`), and puts the original back afterwards.
        """
        previous, self._store = self._store, store
        return previous

    # --- one entry point per command whose rules live in their own core module -----------
    # The modules import this one, so each method imports its module when called.
    def refund(
        self,
        job_id: str,
        credits: int | None,
        reason: str,
        operator: str,
        *,
        dry_run: bool = False,
    ) -> RefundReport:
        """`videogen refund` (core/refunds.py)."""
        from videogen_cli.core.refunds import refund

        return refund(self, job_id, credits, reason, operator, dry_run=dry_run)

    def grant(self, request: GrantRequest) -> GrantReport:
        """`videogen grant` (core/credits.py)."""
        from videogen_cli.core.credits import grant

        return grant(self, request)

    def idempotency_record(self, key: str) -> IdempotencyRecord:
        """`videogen replay-key --show` (core/replay.py)."""
        from videogen_cli.core.replay import load_record

        return load_record(self, key)

    def replay(self, key: str) -> ReplayVerdict:
        """`videogen replay-key` (core/replay.py)."""
        from videogen_cli.core.replay import replay_key

        return replay_key(self, key)

    def reconcile(
        self,
        *,
        older_than: float,
        limit: int,
        dry_run: bool,
        on_job: Callable[[JobAction], None] | None = None,
    ) -> ReconcileSummary:
        """`videogen reconcile` (core/reconcile.py)."""
        from videogen_cli.core.reconcile import reconcile

        return reconcile(self, older_than=older_than, limit=limit, dry_run=dry_run, on_job=on_job)

    def watch(
        self,
        job_ids: Sequence[str],
        *,
        timeout: float,
        backoff: Backoff,
        reporter: WatchReporter,
        stream: bool = True,
    ) -> WatchResult:
        """`videogen watch` and `generate --watch` (core/watching.py)."""
        from videogen_cli.core.watching import watch

        return watch(
            self, job_ids, timeout=timeout, backoff=backoff, reporter=reporter, stream=stream
        )

    def check(self, job_id: str, *, stream: bool = True) -> RefreshOutcome:
        """`videogen status`: one read of the job from its provider (core/watching.py)."""
        from videogen_cli.core.watching import check_once

        return check_once(self, job_id, stream=stream)

    # --- reading -----------------------------------------------------------------------------
    def catalog(self) -> ModelCatalog:
        """`videogen models`: every model, active or not."""
        return ModelCatalog(tuple(self._store.list_models()))

    def list_models(self) -> list[Model]:
        return self._store.list_models()

    def get_model(self, slug_or_id: str) -> Model | None:
        return self._store.get_model(slug_or_id)

    def recent_jobs(self, user_id: str | None = None, limit: int = DEFAULT_JOBS_LIMIT) -> JobList:
        """`videogen jobs`: newest first, as stored (no provider is asked)."""
        checked = check_uuid(user_id, "user id") if user_id is not None else None
        return JobList(tuple(self._store.list_jobs(checked, limit)), checked)

    def credits(self, user_id: str, limit: int = CREDITS_LEDGER_ROWS) -> CreditsReport:
        """`videogen credits`: the balance and the latest ledger rows; raises
        NotFoundError (user_not_found) for a user the store does not know."""
        user_id = check_uuid(user_id, "user id")
        balance = self._store.get_balance(user_id)
        if balance is None:
            raise NotFoundError(f"user {user_id} not found", code="user_not_found")
        ledger = self._store.list_ledger(user_id, limit)
        return CreditsReport(user_id, balance, tuple(ledger))

    def get_balance(self, user_id: str) -> int | None:
        """The user's balance, or None for a user the store does not know."""
        return self._store.get_balance(user_id)

    def list_ledger(self, user_id: str, limit: int = DEFAULT_LEDGER_LIMIT) -> list[LedgerEntry]:
        return self._store.list_ledger(user_id, limit)

    def list_jobs(self, user_id: str | None = None, limit: int = DEFAULT_JOBS_LIMIT) -> list[Job]:
        return self._store.list_jobs(user_id, limit)

    def find_job(self, job_id: str) -> Job | None:
        """The stored job, or None: `get_job` without the not-found error."""
        return self._store.get_job(job_id)

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        return self._store.get_idempotency_record(key)

    def list_unfinished_jobs(self, older_than: float, limit: int) -> list[Job]:
        return self._store.list_unfinished_jobs(older_than, limit)

    # --- moving credits (operators) ------------------------------------------------------
    def refund_job(
        self,
        job_id: str,
        credits: int | None,
        reason: str,
        operator: str,
        *,
        dry_run: bool = False,
    ) -> RefundOutcome:
        return self._store.refund_job(job_id, credits, reason, operator, dry_run=dry_run)

    def grant_credits(
        self,
        user_id: str,
        credits: int,
        reason: str,
        operator: str,
        *,
        idempotency_key: str | None = None,
    ) -> GrantOutcome:
        return self._store.grant_credits(
            user_id, credits, reason, operator, idempotency_key=idempotency_key
        )

    def sweep_stranded(
        self, grace_seconds: float, *, limit: int | None = None, dry_run: bool = False
    ) -> StrandedSweep:
        return self._store.sweep_stranded(grace_seconds, limit=limit, dry_run=dry_run)

    # --- preparing ---------------------------------------------------------------------------
    def prepare(
        self,
        *,
        user_id: str,
        model_ref: str,
        prompt: str,
        image_url: str | None,
        settings: dict[str, Any],
    ) -> PreparedRequest:
        """What a user typed, validated and priced against this store's catalog, before
        any charge; raises UsageError (2), NotFoundError (3), RefusedError (4)."""
        return prepare_request(
            self._store,
            user_id=user_id,
            model_ref=model_ref,
            prompt=prompt,
            image_url=image_url,
            settings=settings,
        )

    # --- generate --------------------------------------------------------------------------
    def generate(
        self,
        prepared: PreparedRequest,
        idempotency_key: str,
        *,
        on_charged: Callable[[Job], None] | None = None,
    ) -> GenerateOutcome:
        """Charge and create once per key, then hand the job to the provider.

        A replay (same key, same request) changes nothing and submits nothing.
        ``on_charged`` is called once the credits were taken for a new job, before the
        submit (never for a replay, a refusal or invalid input). Store calls: one
        ``create_job`` and one ``record_submission`` (or ``fail_job``); the balance is
        ``create_job``'s, since a submission moves no money.
        """
        key = check_idempotency_key(idempotency_key)
        # Build the provider and learn who it is first: a misconfigured one (or a
        # simulator whose database is unusable) must fail before any charge.
        provider = self.provider
        identity = provider.identity
        created = self._store.create_job(
            NewJob(
                user_id=prepared.request.user_id,
                idempotency_key=key,
                fingerprint=prepared.fingerprint,
                model_slug=prepared.model.slug,
                prompt=prepared.request.prompt,
                image_url=prepared.request.image_url,
                settings=prepared.request.settings,
                cost=prepared.cost,
                request=prepared.request.to_json(),
            )
        )
        if created.replayed:
            return GenerateOutcome(created.job, key, True, created.balance)
        job = created.job
        if on_charged is not None:
            on_charged(job)
        try:
            submission = provider.submit(prepared.model.endpoint_id, prepared.fal_arguments())
        except (RefusedError, ProviderError) as exc:
            # fal refused, or could not be reached after the retries that cannot create a
            # second job: the user must not pay for a video that will never come.
            failed = self._store.fail_job(job.job_id, f"submission failed: {exc.message}")
            balance = created.balance + failed.refunded_credits - job.refunded_credits
            return GenerateOutcome(failed, key, False, balance, submit_error=exc)
        recorded = self._store.record_submission(
            job.job_id, prepared.model.endpoint_id, submission, identity
        )
        balance = created.balance
        if recorded.provider_request_id != submission.request_id:
            # The job was failed and refunded as never-submitted while we were submitting
            # (only after a long stall): stop the fal job so nobody pays for it twice.
            self._cancel_quietly(prepared.model.endpoint_id, submission.request_id)
            balance += recorded.refunded_credits - job.refunded_credits
        return GenerateOutcome(recorded, key, False, balance, notice=submission.warning)

    # --- status ----------------------------------------------------------------------------
    def get_job(self, job_id: str) -> Job:
        job = self._store.get_job(check_uuid(job_id, "job id"))
        if job is None:
            raise NotFoundError(
                f"job {job_id} not found",
                code="job_not_found",
                hint="list recent jobs with: videogen jobs",
            )
        return job

    def refresh(
        self,
        job_id: str,
        *,
        sync: bool = True,
        known: Job | None = None,
        fetch: Callable[[ProviderHandle], ProviderStatus] | None = None,
    ) -> RefreshOutcome:
        """Read the job (or take ``known``, just read by the caller); if it is still
        running, ask the provider and store what it says.

        ``fetch`` replaces the status poll (`watch` passes the first event of the status
        stream), so every rule here applies to a streamed status too.
        A job of another provider comes back unchanged with ``synced=False``.
        """
        job = known if known is not None else self.get_job(job_id)
        if job.status.terminal or not sync:
            return RefreshOutcome(job)
        if job.provider_request_id is None:
            age = self.clock.now() - job.created_at.timestamp()
            if age > self.submit_grace_seconds:
                return RefreshOutcome(self._store.fail_job(job.job_id, NEVER_SUBMITTED))
            return RefreshOutcome(job)
        foreign = self.not_mine(job)
        if foreign is not None:
            return RefreshOutcome(job, synced=False, not_synced_reason=foreign)
        handle = provider_handle(job)
        try:
            status = (fetch or self.provider.status)(handle)
            job = self.apply_provider_status(job, status)
        except ProviderError as exc:
            if exc.code == "provider_auth":
                raise  # a wrong key is not transient: say so now
            if exc.code == "provider_not_found":
                return self._not_found(job, exc)
            return RefreshOutcome(job, transient_error=exc.message)
        return RefreshOutcome(job)

    def apply_provider_status(self, job: Job, status: ProviderStatus) -> Job:
        """Store what the provider said about a running job: polled by `refresh`, or one
        event of the status stream (`watch`); both take this one path.

        COMPLETED fetches the result first (a video, or the job's own error). Raises
        ProviderError when that fetch fails; the job is then left as it was.
        """
        if status.state is ProviderState.IN_QUEUE:
            return self._store.apply_status(
                job.job_id, JobStatus.PENDING, queue_position=status.queue_position
            )
        if status.state is ProviderState.IN_PROGRESS:
            return self._store.apply_status(job.job_id, JobStatus.PROCESSING)
        if status.error:
            return self._store.fail_job(job.job_id, status.error)
        result = self.provider.result(provider_handle(job))
        if result.video_url:
            return self._store.apply_status(
                job.job_id,
                JobStatus.COMPLETED,
                video_url=result.video_url,
                thumbnail_url=result.thumbnail_url,
            )
        return self._store.fail_job(job.job_id, result.error or "no video in the result")

    def not_mine(self, job: Job) -> str | None:
        """Why the configured provider may not sync this job, or None when it may.

        Jobs recorded before providers were recorded (no identity) are synced through the
        configured provider, under the same not-found rule.
        """
        owner = job.provider_identity
        if owner is None:
            return None
        mine = self.provider.identity
        if owner == mine:
            return None
        return (
            f"job {job.job_id} was submitted to {owner.describe()}, but this process is "
            f"configured for {mine.describe()}; shown as stored, not synced "
            f"({_where_to_sync(owner)})"
        )

    def _not_found(self, job: Job, exc: ProviderError) -> RefreshOutcome:
        """One "not found" answer: counted; only the NOT_FOUND_LIMIT-th in a row fails."""
        noted = self._store.note_not_found(job.job_id)
        if noted.status.terminal:
            # Another process finished it meanwhile: nothing moved here.
            return RefreshOutcome(noted, failed_elsewhere=noted.status is JobStatus.FAILED)
        if noted.not_found_count < NOT_FOUND_LIMIT:
            return RefreshOutcome(
                noted,
                transient_error=f"{exc.message}; answer {noted.not_found_count} of "
                f"{NOT_FOUND_LIMIT} in a row before the job is failed and refunded",
            )
        # The job's own provider said, again and again, that it does not know the
        # request (expired, or never kept): no video will come, the user is refunded.
        error = (
            f"its provider did not know the request {noted.not_found_count} times in a row: "
            f"{exc.message}"
        )
        failed = self._store.fail_job(job.job_id, error)
        # Concurrent callers each get their own count from note_not_found, so the stored
        # error names the one whose fail_job refunded; the others moved nothing and say so
        # (several `reconcile` runs at once add up to one refund per job).
        return RefreshOutcome(failed, failed_elsewhere=failed.error != error)

    def _cancel_quietly(self, endpoint_id: str, request_id: str) -> None:
        try:
            self.provider.cancel(ProviderHandle(endpoint_id=endpoint_id, request_id=request_id))
        except VideogenError:
            pass  # best effort: the job is already refunded either way


def _where_to_sync(owner: ProviderIdentity) -> str:
    if owner.name == "simulator":
        return "run it with the VIDEOGEN_HOME whose simulator took the job"
    return f"run it with FAL_KEY set and VIDEOGEN_FAL_QUEUE_URL={owner.origin}"
