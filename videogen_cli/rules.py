"""Money rules that the core checks ahead (for previews) and the sandbox store enforces.

The Postgres functions enforce the same rules in SQL; the contract suite keeps the two
in step. Kept here, beside the domain, so neither layer writes them twice.
"""

from __future__ import annotations

from videogen_cli.domain import Job
from videogen_cli.errors import RefusedError


def refund_amount(job: Job, credits: int | None) -> int:
    """How much an operator refund of `job` moves: all it used, or `credits`.

    Raises RefusedError ``job_not_refundable`` while the job runs, and
    ``refund_exceeds_credits`` for more than the job used.
    """
    if not job.status.terminal:
        raise RefusedError(
            f"job {job.job_id} is still {job.status.value}; only finished jobs are refunded",
            code="job_not_refundable",
            hint=f"wait for it: videogen watch {job.job_id}",
        )
    amount = job.credits_used if credits is None else credits
    if amount > job.credits_used:
        raise RefusedError(
            f"cannot refund {amount} credits: the job used {job.credits_used}",
            code="refund_exceeds_credits",
            hint=f"use --credits {job.credits_used} or less",
        )
    return amount
