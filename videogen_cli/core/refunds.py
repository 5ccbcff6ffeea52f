"""Operator refunds: at most one per job, never more than it used, always on record.

Every rule lives in the store's one atomic operation (`JobStore.refund_job`, SQL
`videogen_refund_job`); a dry run asks the store the same question with nothing
written, so a preview can never disagree with the refund it previews.
"""

from __future__ import annotations

from dataclasses import dataclass

from videogen_cli.core.jobs import JobService
from videogen_cli.core.requests import check_uuid
from videogen_cli.domain import JsonDict, RefundOutcome
from videogen_cli.errors import UsageError

MAX_REASON_CHARS = 500
MAX_OPERATOR_CHARS = 100
# The largest credit amount any store can hold (Postgres `integer`): beyond it the input
# is a typo, refused as bad usage before it reaches a store.
MAX_CREDITS = 2**31 - 1


@dataclass(frozen=True)
class RefundReport:
    job_id: str
    user_id: str
    refunded_credits: int
    refunded_now: bool  # dry run: whether the refund would move credits
    balance: int  # dry run: the balance it would leave
    balance_before: int
    reason: str | None
    operator: str | None
    dry_run: bool = False

    @property
    def moving(self) -> int:
        """Credits this refund moves (or would move): 0 for an already refunded job."""
        return self.balance - self.balance_before if self.refunded_now else 0

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


def check_text(what: str, value: str, limit: int, hint: str) -> str:
    value = value.strip()
    if not value:
        raise UsageError(f"{what} is required", hint=hint)
    if len(value) > limit:
        raise UsageError(f"{what} is longer than {limit} characters", hint=hint)
    return value


def check_credits(credits: int | None, limit: int = MAX_CREDITS) -> None:
    if credits is not None and not 1 <= credits <= limit:
        raise UsageError(
            f"--credits must be a whole number from 1 to {limit:,}, not {credits}",
            hint="give the number of credits to move",
        )


def check_refund_input(reason: str, operator: str, credits: int | None) -> tuple[str, str]:
    reason = check_text(
        "a reason", reason, MAX_REASON_CHARS, 'pass --reason "why the credits move"'
    )
    operator = check_text(
        "an operator", operator, MAX_OPERATOR_CHARS, "pass --operator or VIDEOGEN_OPERATOR"
    )
    check_credits(credits)
    return reason, operator


def refund(
    service: JobService,
    job_id: str,
    credits: int | None,
    reason: str,
    operator: str,
    *,
    dry_run: bool = False,
) -> RefundReport:
    """Refund (or with `dry_run`, preview refunding) a terminal job, once.

    Raises what the store raises: NotFoundError (3); RefusedError (4) for a running job,
    more than the job used, or a second refund after a partial one (the message names
    the amount already refunded). A job refunded in full answers `refunded_now=False`.
    """
    check_credits(credits)
    outcome = service.refund_job(
        check_uuid(job_id, "job id"), credits, reason, operator, dry_run=dry_run
    )
    return _report(outcome, dry_run)


def _report(outcome: RefundOutcome, dry_run: bool) -> RefundReport:
    before = outcome.balance_before
    return RefundReport(
        job_id=outcome.job.job_id,
        user_id=outcome.job.user_id,
        refunded_credits=outcome.refunded_credits,
        refunded_now=outcome.refunded_now,
        balance=outcome.balance,
        # Stores always set it; an old store without it moved nothing it could show.
        balance_before=outcome.balance if before is None else before,
        reason=outcome.reason,
        operator=outcome.operator,
        dry_run=dry_run,
    )
