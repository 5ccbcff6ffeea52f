"""Domain records shared by the core, the stores and the CLI.

Plain frozen dataclasses: cheap to import, easy to compare in tests. Every store
returns these, whatever its transport, so the core never sees rows or JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JsonDict = dict[str, Any]


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class LedgerKind(enum.StrEnum):
    GRANT = "grant"
    CHARGE = "charge"
    REFUND = "refund"


@dataclass(frozen=True)
class SettingSpec:
    """One setting a model accepts: its JSON type, the allowed values and the default.

    ``type`` is ``"integer"`` or ``"string"`` or ``"boolean"``: fal is strict about
    types (sora's duration is the integer 4, veo's is the string "4s").
    """

    type: str
    allowed: tuple[Any, ...] | None
    default: Any


@dataclass(frozen=True)
class Model:
    id: str
    slug: str
    endpoint_id: str
    credits_per_second: int
    requires_image: bool
    settings: dict[str, SettingSpec]
    active: bool = True
    name: str = ""

    def to_json(self) -> JsonDict:
        """One model as `videogen models --json` lists it (tests/test_cli.py
        `test_models_lists_the_catalog`)."""
        return {
            "slug": self.slug,
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "credits_per_second": self.credits_per_second,
            "requires_image": self.requires_image,
            "active": self.active,
            "settings": {
                name: {"allowed": list(spec.allowed or ()), "default": spec.default}
                for name, spec in self.settings.items()
            },
        }


@dataclass(frozen=True)
class Job:
    job_id: str
    user_id: str
    model: str  # model slug
    status: JobStatus
    prompt: str
    settings: JsonDict
    credits_used: int
    refunded_credits: int
    created_at: datetime
    updated_at: datetime
    image_url: str | None = None
    idempotency_key: str | None = None
    endpoint_id: str | None = None
    provider_request_id: str | None = None
    status_url: str | None = None
    response_url: str | None = None
    cancel_url: str | None = None
    queue_position: int | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    error: str | None = None
    # Which provider took the job (README "Each job stays with its provider"): None for
    # jobs recorded before providers were recorded, and for jobs never submitted.
    provider: str | None = None  # "fal" | "simulator"
    provider_origin: str | None = None  # fal's queue base URL, or "sandbox:<sandbox id>"
    # Consecutive "not found" answers from the job's own provider (reset by any other
    # answer); the core fails the job only once this reaches its threshold.
    not_found_count: int = 0
    submitted_at: datetime | None = None

    @property
    def provider_identity(self) -> ProviderIdentity | None:
        if self.provider is None or self.provider_origin is None:
            return None
        return ProviderIdentity(self.provider, self.provider_origin)

    def to_json(self) -> JsonDict:
        """The job object `status --json` prints, exactly these keys (tests/test_cli.py
        `test_generate_watch_json_streams_job_lines_to_completion` pins them)."""
        return {
            "job_id": self.job_id,
            "user_id": self.user_id,
            "model": self.model,
            "status": self.status.value,
            "prompt": self.prompt,
            "settings": self.settings,
            "credits_used": self.credits_used,
            "refunded_credits": self.refunded_credits,
            "provider_request_id": self.provider_request_id,
            "queue_position": self.queue_position,
            "video_url": self.video_url,
            "thumbnail_url": self.thumbnail_url,
            "error": self.error,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    user_id: str
    fingerprint: str
    job_id: str
    request: JsonDict  # the normalised request, enough to send it again
    created_at: datetime

    def to_json(self) -> JsonDict:
        return {
            "idempotency_key": self.key,
            "user_id": self.user_id,
            "fingerprint": self.fingerprint,
            "job_id": self.job_id,
            "request": self.request,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    user_id: str
    job_id: str | None
    delta: int
    kind: LedgerKind
    reason: str | None
    operator: str | None
    created_at: datetime

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "job_id": self.job_id,
            "delta": self.delta,
            "kind": self.kind.value,
            "reason": self.reason,
            "operator": self.operator,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class NewJob:
    """Everything `create_job` needs; built and validated by the core."""

    user_id: str
    idempotency_key: str
    fingerprint: str
    model_slug: str
    prompt: str
    image_url: str | None
    settings: JsonDict
    cost: int
    request: JsonDict = field(default_factory=dict)


@dataclass(frozen=True)
class CreateJobResult:
    job: Job
    replayed: bool
    balance: int


@dataclass(frozen=True)
class RefundOutcome:
    job: Job
    refunded_now: bool  # False: the job had been refunded before (or dry run); nothing moved
    refunded_credits: int  # total refunded for this job after the call (dry run: would be)
    balance: int  # after the call (dry run: what it would be)
    reason: str | None
    operator: str | None
    dry_run: bool = False
    balance_before: int | None = None  # the balance before the call (for confirmations)


@dataclass(frozen=True)
class GrantOutcome:
    """The answer of `JobStore.grant_credits`."""

    user_id: str
    granted: int  # credits this grant is for (the stored grant's, on a replayed key)
    granted_now: bool  # False: the idempotency key had granted before; nothing moved
    balance: int  # after the call
    reason: str | None
    operator: str | None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class StrandedSweep:
    """The answer of `JobStore.sweep_stranded` (and of SQL videogen_sweep_stranded)."""

    swept: int  # jobs failed and refunded by this call (dry run: that would be)
    refunded_credits: int
    job_ids: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True)
class ProviderIdentity:
    """Who a job was submitted to: `fal` + queue base URL, or `simulator` + its sandbox.

    Two identities are the same provider exactly when they are equal; only the job's own
    provider may sync it (status, watch, reconcile, serve).
    """

    name: str  # "fal" | "simulator"
    origin: str  # e.g. "https://queue.fal.run", or "sandbox:<uuid of the sandbox file>"

    def describe(self) -> str:
        if self.name == "simulator":
            return f"the simulator of {self.origin}"
        return f"{self.name} at {self.origin}"


@dataclass(frozen=True)
class ProviderHandle:
    """What the provider needs to follow one submitted request."""

    endpoint_id: str
    request_id: str
    status_url: str | None = None
    response_url: str | None = None
    cancel_url: str | None = None


@dataclass(frozen=True)
class Submission:
    request_id: str
    status_url: str | None
    response_url: str | None
    cancel_url: str | None
    queue_position: int | None
    # Set when fal answered the submit with an error but named the request it created
    # (an ``x-fal-request-id`` on a 5xx): the job is followed like any other, and this
    # says why it may yet turn out unknown to fal.
    warning: str | None = None


class ProviderState(enum.StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class ProviderStatus:
    state: ProviderState
    queue_position: int | None = None
    error: str | None = None  # set only when COMPLETED with error/error_type
    error_type: str | None = None


@dataclass(frozen=True)
class ProviderResult:
    """The outcome of a result call: a video, or the job's own error."""

    video_url: str | None = None
    thumbnail_url: str | None = None
    error: str | None = None


def iso(value: datetime) -> str:
    """ISO-8601 in UTC, the one timestamp format of every output."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
