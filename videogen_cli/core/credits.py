"""Operator grants: credits added to a user's account, with who and why on record."""

from __future__ import annotations

from dataclasses import dataclass

from videogen_cli.core.jobs import JobService
from videogen_cli.core.refunds import check_refund_input
from videogen_cli.core.requests import check_uuid
from videogen_cli.domain import JsonDict
from videogen_cli.errors import UsageError

MAX_GRANT = 1_000_000  # a typo guard: nobody grants a million credits by hand


@dataclass(frozen=True)
class GrantReport:
    user_id: str
    granted: int
    balance: int
    reason: str
    operator: str

    def to_json(self) -> JsonDict:
        return {
            "user_id": self.user_id,
            "granted": self.granted,
            "balance": self.balance,
            "reason": self.reason,
            "operator": self.operator,
        }


def check_grant_input(
    user_id: str, credits: int, reason: str, operator: str
) -> tuple[str, str, str]:
    user_id = check_uuid(user_id, "user id")
    reason, operator = check_refund_input(reason, operator, credits)
    if credits > MAX_GRANT:
        raise UsageError(f"--credits {credits} is more than {MAX_GRANT:,} at once")
    return user_id, reason, operator


def grant(
    service: JobService, user_id: str, credits: int, reason: str, operator: str
) -> GrantReport:
    """Add credits (creating the account when new). Each call is a new grant."""
    outcome = service.store.grant_credits(user_id, credits, reason, operator)
    return GrantReport(user_id, credits, outcome.balance, reason, operator)
