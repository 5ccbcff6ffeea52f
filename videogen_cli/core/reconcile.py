"""`videogen reconcile`: nothing is left waiting for a person to run `status`.

One sweep over every job that is not terminal (README "Money rules", `reconcile`):

- jobs charged but never submitted (no provider request id) and older than the grace
  period are failed and refunded by the store's `sweep_stranded` (SQL
  `public.videogen_sweep_stranded`, which skips rows another sweeper holds);
- every other job is synced with its own provider exactly as `status` does
  (`JobService.refresh`, with its not-found rule); a job of another provider is skipped
  and counted, never changed.

Every money movement is one store operation that is safe under concurrency (`fail_job`
refunds a job once, `sweep_stranded` locks what it sweeps), so any number of reconcile
processes on any number of machines move each credit at most once. A dry run reads the
database only: it calls no provider and moves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from videogen_cli.core.jobs import JobService
from videogen_cli.domain import Job, JobStatus, JsonDict
from videogen_cli.errors import ProviderError, UsageError

DEFAULT_LIMIT = 500
MAX_LIMIT = 100_000
# A sweep looks back at most this far for `--older-than` (about 10 years): any larger
# value is a typo, and a bound keeps the arithmetic finite.
MAX_OLDER_THAN_SECONDS = 10 * 365 * 86400.0


@dataclass(frozen=True)
class JobAction:
    """What reconcile did (or, in a dry run, would do) with one job."""

    job_id: str
    action: str  # see ACTIONS
    status: str  # the job's status afterwards (dry run: as stored)
    detail: str | None = None

    def to_json(self) -> JsonDict:
        data: JsonDict = {"job_id": self.job_id, "action": self.action, "status": self.status}
        if self.detail is not None:
            data["detail"] = self.detail
        return data


# The actions, in the order a summary lists them.
ACTIONS = (
    "synced",  # asked its provider; still running, or changed state (also: failed and
    # refunded by another process at the same moment, so this one moved nothing)
    "completed",  # synced and now completed
    "failed_and_refunded",  # synced and now failed and refunded, by this process
    "stranded_and_refunded",  # never submitted, past the grace period: failed and refunded
    "skipped_other_provider",  # another provider took it: shown as stored, untouched
    "transient_error",  # the provider gave no usable answer this time; left as it was
    "awaiting_submit",  # never submitted, still inside the grace period
    "would_sync",  # dry run: would ask its provider
    "would_refund_stranded",  # dry run: would fail and refund it as never submitted
)


@dataclass
class ReconcileSummary:
    dry_run: bool
    older_than_seconds: float
    grace_seconds: float
    jobs: list[JobAction] = field(default_factory=list)
    stranded_refunded_credits: int = 0  # by this run's stranded sweep (dry run: would be)

    def count(self, *actions: str) -> int:
        return sum(1 for job in self.jobs if job.action in actions)

    def to_json(self) -> JsonDict:
        """The one object `reconcile --json` prints."""
        return {
            "dry_run": self.dry_run,
            "seen": len(self.jobs),
            # Synced: every job this run asked its provider about and got an answer for.
            "synced": self.count("synced", "completed", "failed_and_refunded"),
            "completed": self.count("completed"),
            "failed_and_refunded": self.count("failed_and_refunded"),
            "stranded_and_refunded": self.count("stranded_and_refunded"),
            "skipped_other_provider": self.count("skipped_other_provider"),
            "transient_errors": self.count("transient_error"),
            "awaiting_submit": self.count("awaiting_submit"),
            "would_sync": self.count("would_sync"),
            "would_refund_stranded": self.count("would_refund_stranded"),
            "stranded_refunded_credits": self.stranded_refunded_credits,
            "older_than_seconds": self.older_than_seconds,
            "grace_seconds": self.grace_seconds,
            "jobs": [job.to_json() for job in self.jobs],
        }


def check_options(older_than: float, limit: int) -> None:
    """Bad options fail before anything is read or moved (exit 2)."""
    if not math.isfinite(older_than) or not 0 <= older_than <= MAX_OLDER_THAN_SECONDS:
        raise UsageError(
            f"--older-than must be a number of seconds from 0 to {MAX_OLDER_THAN_SECONDS:g}",
            hint="e.g. --older-than 3600 for jobs at least an hour old",
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be from 1 to {MAX_LIMIT}", hint="e.g. --limit 100")


def reconcile(
    service: JobService,
    *,
    older_than: float = 0.0,
    limit: int = DEFAULT_LIMIT,
    dry_run: bool = False,
    on_job: Callable[[JobAction], None] | None = None,
) -> ReconcileSummary:
    """Sweep the unfinished jobs once; ``on_job`` hears about each job as it is done."""
    check_options(older_than, limit)
    # A stranded job must be past the grace period AND as old as asked.
    grace = max(service.submit_grace_seconds, older_than)
    summary = ReconcileSummary(dry_run, older_than, grace)

    def report(action: JobAction) -> None:
        summary.jobs.append(action)
        if on_job is not None:
            on_job(action)

    unfinished = service.list_unfinished_jobs(older_than, limit)
    # The store decides what is stranded, in one locked operation, by its own clock.
    swept = service.sweep_stranded(grace, limit=limit, dry_run=dry_run)
    summary.stranded_refunded_credits = swept.refunded_credits
    stranded = set(swept.job_ids)
    stranded_action = "would_refund_stranded" if dry_run else "stranded_and_refunded"
    listed = {job.job_id for job in unfinished}
    for job_id in swept.job_ids:
        if job_id not in listed:  # the listing's limit cut it off, the sweep did not
            status = JobStatus.PENDING if dry_run else JobStatus.FAILED
            report(JobAction(job_id, stranded_action, status.value))
    for job in unfinished:
        if job.job_id in stranded:
            status = job.status if dry_run else JobStatus.FAILED
            report(JobAction(job.job_id, stranded_action, status.value))
        elif job.provider_request_id is None:
            # Inside the grace period (its submit may be under way), or swept by a
            # concurrent reconcile just now: either way nothing for this run to do.
            report(JobAction(job.job_id, "awaiting_submit", job.status.value))
        else:
            report(_sync_one(service, job, dry_run))
    return summary


def _sync_one(service: JobService, job: Job, dry_run: bool) -> JobAction:
    foreign = service.not_mine(job)
    if foreign is not None:
        return JobAction(job.job_id, "skipped_other_provider", job.status.value, foreign)
    if dry_run:
        return JobAction(job.job_id, "would_sync", job.status.value)
    try:
        outcome = service.refresh(job.job_id, known=job)
    except (ProviderError, UsageError) as exc:
        if exc.code == "provider_auth":
            raise  # a wrong key fails every job alike: say so once, now
        # One job's trouble (a timeout, an unusable stored endpoint id) is not the
        # others': note it and go on.
        return JobAction(job.job_id, "transient_error", job.status.value, exc.message)
    after = outcome.job
    if not outcome.synced:  # cannot happen after not_mine(); kept for safety
        return JobAction(job.job_id, "skipped_other_provider", after.status.value)
    if outcome.transient_error is not None:
        return JobAction(job.job_id, "transient_error", after.status.value, outcome.transient_error)
    if after.status is JobStatus.COMPLETED:
        return JobAction(job.job_id, "completed", after.status.value)
    if after.status is JobStatus.FAILED and not outcome.failed_elsewhere:
        return JobAction(job.job_id, "failed_and_refunded", after.status.value, after.error)
    return JobAction(job.job_id, "synced", after.status.value)
