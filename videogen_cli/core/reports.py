"""What the read-only commands answer: records that carry their own JSON form.

`JobService.catalog`, `recent_jobs` and `credits` return these; the CLI prints
`to_json()` for `--json` and hands them to a renderer otherwise (cli/render.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from videogen_cli.domain import Job, JsonDict, LedgerEntry, Model

# The latest ledger rows `videogen credits` shows unless --limit says otherwise.
CREDITS_LEDGER_ROWS = 20


@dataclass(frozen=True)
class ModelCatalog:
    """`videogen models`: every model, active or not, in the store's order."""

    models: tuple[Model, ...]

    def to_json(self) -> JsonDict:
        return {"models": [model.to_json() for model in self.models]}


@dataclass(frozen=True)
class JobList:
    """`videogen jobs`: recent jobs, newest first, as stored."""

    jobs: tuple[Job, ...]
    user_id: str | None = None  # the user asked about, if any

    def to_json(self) -> JsonDict:
        return {"jobs": [job.to_json() for job in self.jobs]}


@dataclass(frozen=True)
class CreditsReport:
    """`videogen credits`: a user's balance and latest ledger rows, newest first."""

    user_id: str
    balance: int
    ledger: tuple[LedgerEntry, ...]

    def to_json(self) -> JsonDict:
        return {
            "user_id": self.user_id,
            "balance": self.balance,
            "ledger": [entry.to_json() for entry in self.ledger],
        }
