"""`replay-key`: prove that a retried request never charges twice.

The stored request is sent again through the very same generate path with the same
key; the verdict is `idempotent` only if the answer is a replay of the same job and
the user's balance did not move.
"""

from __future__ import annotations

from dataclasses import dataclass

from videogen_cli.core.jobs import GenerateOutcome, JobService
from videogen_cli.core.requests import CanonicalRequest
from videogen_cli.domain import IdempotencyRecord, JsonDict
from videogen_cli.errors import NotFoundError


@dataclass(frozen=True)
class ReplayVerdict:
    key: str
    original_job_id: str
    outcome: GenerateOutcome
    balance_before: int
    balance_after: int

    @property
    def idempotent(self) -> bool:
        return (
            self.outcome.replayed
            and self.outcome.job.job_id == self.original_job_id
            and self.balance_before == self.balance_after
        )

    def to_json(self) -> JsonDict:
        return {
            "idempotency_key": self.key,
            "job_id": self.outcome.job.job_id,
            "replayed": self.outcome.replayed,
            "balance_before": self.balance_before,
            "balance_after": self.balance_after,
            "verdict": "idempotent" if self.idempotent else "violated",
        }


def load_record(service: JobService, key: str) -> IdempotencyRecord:
    record = service.get_idempotency_record(key.strip())
    if record is None:
        raise NotFoundError(
            f"idempotency key {key!r} not found",
            code="key_not_found",
            hint="the key is printed by `videogen generate`",
        )
    return record


def replay_key(service: JobService, key: str) -> ReplayVerdict:
    record = load_record(service, key)
    request = CanonicalRequest.from_json(record.request)
    prepared = service.prepare(
        user_id=request.user_id,
        model_ref=request.model,
        prompt=request.prompt,
        image_url=request.image_url,
        settings=request.settings,
    )
    before = service.get_balance(record.user_id) or 0
    outcome = service.generate(prepared, record.key)
    after = service.get_balance(record.user_id) or 0
    return ReplayVerdict(record.key, record.job_id, outcome, before, after)
