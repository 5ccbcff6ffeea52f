"""What a smoke run found: one result per check, and the run's verdict.

Plain data, shared by the checks, the CLI's table and JSON, and the JUnit writer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from videogen_cli.domain import JsonDict

# The checks, in the order they run. The names are stable: CI dashboards key on them.
CHECK_NAMES: tuple[str, ...] = (
    "create_pending",
    "replay_same_job",
    "key_reuse_refused",
    "insufficient_credits_refused",
    "completes_with_video",
    "failure_refunded_once",
    "refund_once_and_invariant",
)


class CheckStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    seconds: float
    # Passed: what was verified (and what was not, when the target could not show it);
    # failed: what was expected and what came back; skipped: why.
    message: str

    def to_json(self) -> JsonDict:
        return {
            "name": self.name,
            "status": self.status.value,
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }


@dataclass
class SmokeReport:
    mode: str  # "direct" | "http"
    target: str  # where the checks ran: a backend description or the endpoint URL
    environment: JsonDict  # {"backend": …, "provider": …} as far as known
    run_id: str
    user_id: str | None = None  # the user whose credits the checks spent
    checks: list[CheckResult] = field(default_factory=list)
    # Set when the target could not be reached during the run (exit 5, not 1).
    unreachable: str | None = None

    @property
    def passed(self) -> bool:
        return self.unreachable is None and all(
            c.status is not CheckStatus.FAILED for c in self.checks
        )

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.checks)

    def count(self, status: CheckStatus) -> int:
        return sum(1 for c in self.checks if c.status is status)

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
            "target": self.target,
            "mode": self.mode,
            "run_id": self.run_id,
            "user_id": self.user_id,
            "environment": self.environment,
        }
        if self.unreachable is not None:
            out["unreachable"] = self.unreachable
        return out
