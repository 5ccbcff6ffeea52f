"""Operator refunds: at most one per job, never more than it used, always on record."""

from __future__ import annotations

from dataclasses import dataclass

from videogen_cli.core.jobs import JobService
from videogen_cli.core.requests import check_uuid
from videogen_cli.domain import Job, JsonDict
from videogen_cli.errors import UsageError
from videogen_cli.rules import refund_amount

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class RefundPlan:
    """What a refund would do, computed from a read; used for --dry-run and confirmation."""

    job: Job
    credits: int
    already_refunded: bool
    balance: int


@dataclass(frozen=True)
class RefundReport:
    job_id: str
    refunded_credits: int
    refunded_now: bool
    balance: int
    reason: str | None
    operator: str | None
    dry_run: bool = False

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "job_id": self.job_id,
            "refunded_credits": self.refunded_credits,
            "refunded_now": self.refunded_now,
            "balance": self.balance,
            "reason": self.reason,
            "operator": self.operator,
        }
        if self.dry_run:
            out["dry_run"] = True
        return out


def check_refund_input(reason: str, operator: str, credits: int | None) -> tuple[str, str]:
    reason, operator = reason.strip(), operator.strip()
    if not reason:
        raise UsageError("a reason is required", hint='pass --reason "why the credits move"')
    if len(reason) > MAX_REASON_CHARS:
        raise UsageError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    if not operator:
        raise UsageError("an operator is required", hint="pass --operator or VIDEOGEN_OPERATOR")
    if credits is not None and credits < 1:
        raise UsageError("--credits must be at least 1")
    return reason, operator


def plan_refund(service: JobService, job_id: str, credits: int | None) -> RefundPlan:
    """Check the rules against the current state without moving anything.

    The store checks them again atomically when the refund is made; this read is for
    showing the operator what will happen and for --dry-run.
    """
    job = service.get_job(job_id)
    balance = service.store.get_balance(job.user_id) or 0
    if job.refunded_credits > 0:
        return RefundPlan(job, job.refunded_credits, True, balance)
    return RefundPlan(job, refund_amount(job, credits), False, balance)


def refund(
    service: JobService, job_id: str, credits: int | None, reason: str, operator: str
) -> RefundReport:
    # No read first: the store checks existence and every rule inside its transaction.
    outcome = service.store.refund_job(check_uuid(job_id, "job id"), credits, reason, operator)
    return RefundReport(
        job_id=outcome.job.job_id,
        refunded_credits=outcome.refunded_credits,
        refunded_now=outcome.refunded_now,
        balance=outcome.balance,
        reason=outcome.reason,
        operator=outcome.operator,
    )


def dry_run_report(plan: RefundPlan, reason: str, operator: str) -> RefundReport:
    return RefundReport(
        job_id=plan.job.job_id,
        refunded_credits=plan.credits,
        refunded_now=False,
        balance=plan.balance if plan.already_refunded else plan.balance + plan.credits,
        reason=reason,
        operator=operator,
        dry_run=True,
    )
