"""Creating a job exactly once and keeping it in step with the provider.

`JobService.generate` is the backend's generate-video flow (design §1) and
`JobService.refresh` its get-video-status flow. Neither knows about terminals: they
return records and raise `VideogenError`s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from videogen_cli.core.requests import PreparedRequest, check_idempotency_key, check_uuid
from videogen_cli.domain import Job, JobStatus, NewJob, ProviderHandle, ProviderState
from videogen_cli.errors import NotFoundError, ProviderError, RefusedError, VideogenError
from videogen_cli.ports import JobStore, VideoProvider

NEVER_SUBMITTED = "never submitted to the provider (the submitting process stopped); refunded"


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


@dataclass(frozen=True)
class RefreshOutcome:
    job: Job
    # Transient provider trouble seen during this refresh: the job was left as it was.
    transient_error: str | None = None


class JobService:
    def __init__(
        self,
        store: JobStore,
        provider_factory: Callable[[], VideoProvider],
        *,
        clock: Any = None,
        submit_grace_seconds: float = 600.0,
    ) -> None:
        self.store = store
        self._provider_factory = provider_factory
        self._provider: VideoProvider | None = None
        self._deadline: float | None = None
        self.clock = clock or SystemClock()
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
        self.store.close()

    # --- generate --------------------------------------------------------------------------
    def generate(self, prepared: PreparedRequest, idempotency_key: str) -> GenerateOutcome:
        """Charge and create once per key, then hand the job to the provider.

        A replay (same key, same request) changes nothing and submits nothing.
        """
        key = check_idempotency_key(idempotency_key)
        # Build the provider first: a misconfigured one must fail before any charge.
        provider = self.provider
        created = self.store.create_job(
            NewJob(
                user_id=prepared.request["user_id"],
                idempotency_key=key,
                fingerprint=prepared.fingerprint,
                model_slug=prepared.model.slug,
                prompt=prepared.request["prompt"],
                image_url=prepared.request["image_url"],
                settings=prepared.request["settings"],
                cost=prepared.cost,
                request=prepared.request,
            )
        )
        if created.replayed:
            return GenerateOutcome(created.job, key, True, created.balance)
        job = created.job
        try:
            submission = provider.submit(prepared.model.endpoint_id, prepared.fal_arguments())
        except (RefusedError, ProviderError) as exc:
            # fal refused, or could not be reached after the retries that cannot create a
            # second job: the user must not pay for a video that will never come.
            failed = self.store.fail_job(job.job_id, f"submission failed: {exc.message}")
            balance = self.store.get_balance(failed.user_id) or 0
            return GenerateOutcome(failed, key, False, balance, submit_error=exc)
        recorded = self.store.record_submission(
            job.job_id, prepared.model.endpoint_id, submission, provider.identity
        )
        if recorded.provider_request_id != submission.request_id:
            # The job was failed and refunded as never-submitted while we were submitting
            # (only after a long stall): stop the fal job so nobody pays for it twice.
            self._cancel_quietly(prepared.model.endpoint_id, submission.request_id)
        balance = self.store.get_balance(recorded.user_id) or 0
        return GenerateOutcome(recorded, key, False, balance)

    # --- status ----------------------------------------------------------------------------
    def get_job(self, job_id: str) -> Job:
        job = self.store.get_job(check_uuid(job_id, "job id"))
        if job is None:
            raise NotFoundError(
                f"job {job_id} not found",
                code="job_not_found",
                hint="list recent jobs with: videogen jobs",
            )
        return job

    def refresh(self, job_id: str, *, sync: bool = True) -> RefreshOutcome:
        """Read the job; if it is still running, ask the provider and store what it says."""
        job = self.get_job(job_id)
        if job.status.terminal or not sync:
            return RefreshOutcome(job)
        if job.provider_request_id is None:
            age = self.clock.now() - job.created_at.timestamp()
            if age > self.submit_grace_seconds:
                return RefreshOutcome(self.store.fail_job(job.job_id, NEVER_SUBMITTED))
            return RefreshOutcome(job)
        handle = ProviderHandle(
            endpoint_id=job.endpoint_id or "",
            request_id=job.provider_request_id,
            status_url=job.status_url,
            response_url=job.response_url,
            cancel_url=job.cancel_url,
        )
        try:
            status = self.provider.status(handle)
            if status.state is ProviderState.IN_QUEUE:
                job = self.store.apply_status(
                    job.job_id, JobStatus.PENDING, queue_position=status.queue_position
                )
            elif status.state is ProviderState.IN_PROGRESS:
                job = self.store.apply_status(job.job_id, JobStatus.PROCESSING)
            elif status.error:
                job = self.store.fail_job(job.job_id, status.error)
            else:
                result = self.provider.result(handle)
                if result.video_url:
                    job = self.store.apply_status(
                        job.job_id,
                        JobStatus.COMPLETED,
                        video_url=result.video_url,
                        thumbnail_url=result.thumbnail_url,
                    )
                else:
                    job = self.store.fail_job(job.job_id, result.error or "no video in the result")
        except ProviderError as exc:
            if exc.code == "provider_auth":
                raise  # a wrong key is not transient: say so now
            if exc.code == "provider_not_found":
                # fal no longer knows the request (expired, or never kept): no video will
                # ever come, so the user gets the credits back.
                failed = self.store.fail_job(job.job_id, f"fal does not know the request: {exc}")
                return RefreshOutcome(failed)
            return RefreshOutcome(job, transient_error=exc.message)
        return RefreshOutcome(job)

    def _cancel_quietly(self, endpoint_id: str, request_id: str) -> None:
        try:
            self.provider.cancel(ProviderHandle(endpoint_id=endpoint_id, request_id=request_id))
        except VideogenError:
            pass  # best effort: the job is already refunded either way
