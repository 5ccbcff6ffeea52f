"""Operator grants: credits added to a user's account, with who and why on record.

With an idempotency key a grant happens at most once, whatever else the repeat says
(`JobStore.grant_credits`), so CI can fund a user on every run safely.
"""

from __future__ import annotations

from dataclasses import dataclass

from videogen_cli.core.jobs import JobService
from videogen_cli.core.refunds import check_credits, check_refund_input
from videogen_cli.core.requests import check_idempotency_key, check_uuid
from videogen_cli.domain import JsonDict

MAX_GRANT = 1_000_000  # a typo guard: nobody grants a million credits by hand


@dataclass(frozen=True)
class GrantReport:
    user_id: str
    granted: int
    granted_now: bool
    balance: int
    reason: str | None
    operator: str | None
    idempotency_key: str | None

    def to_json(self) -> JsonDict:
        return {
            "user_id": self.user_id,
            "granted": self.granted,
            "granted_now": self.granted_now,
            "balance": self.balance,
            "reason": self.reason,
            "operator": self.operator,
            "idempotency_key": self.idempotency_key,
        }


@dataclass(frozen=True)
class GrantRequest:
    """A checked grant: what `grant` sends to the store."""

    user_id: str
    credits: int
    reason: str
    operator: str
    idempotency_key: str | None


def check_grant_input(
    user_id: str, credits: int, reason: str, operator: str, idempotency_key: str | None = None
) -> GrantRequest:
    user_id = check_uuid(user_id, "user id")
    reason, operator = check_refund_input(reason, operator, None)
    check_credits(credits, MAX_GRANT)
    key = None if idempotency_key is None else check_idempotency_key(idempotency_key)
    return GrantRequest(user_id, credits, reason, operator, key)


def grant(service: JobService, request: GrantRequest) -> GrantReport:
    """Add credits (creating the account when new); once per idempotency key."""
    outcome = service.grant_credits(
        request.user_id,
        request.credits,
        request.reason,
        request.operator,
        idempotency_key=request.idempotency_key,
    )
    return GrantReport(
        user_id=outcome.user_id,
        granted=outcome.granted,
        granted_now=outcome.granted_now,
        balance=outcome.balance,
        reason=outcome.reason,
        operator=outcome.operator,
        idempotency_key=outcome.idempotency_key,
    )
