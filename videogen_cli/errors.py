"""The error hierarchy shared by every layer.

Each error carries a stable machine ``code`` (it appears in the JSON error object), a
one-line ``message``, an optional ``hint`` naming the fix, and the exit status of
design §4. The CLI has one boundary that turns these into output; nothing below the
CLI prints.
"""

from __future__ import annotations

from typing import ClassVar


class VideogenError(Exception):
    """Base class: a failure the user should see as one line plus a hint."""

    exit_code: ClassVar[int] = 1
    default_code: ClassVar[str] = "error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.hint = hint


class JobFailedError(VideogenError):
    """The job ended `failed` (exit 1)."""

    exit_code = 1
    default_code = "job_failed"


class NotIdempotentError(VideogenError):
    """`replay-key` found the key not idempotent (exit 1)."""

    exit_code = 1
    default_code = "not_idempotent"


class UsageError(VideogenError):
    """Bad flags or input, settings the model does not allow, malformed ids (exit 2)."""

    exit_code = 2
    default_code = "invalid_input"


class NotFoundError(VideogenError):
    """Unknown job, key, user or model (exit 3)."""

    exit_code = 3
    default_code = "not_found"


class RefusedError(VideogenError):
    """Refused by a money or idempotency rule (exit 4).

    Codes used: ``insufficient_credits``, ``idempotency_key_reused``,
    ``refund_exceeds_credits``, ``job_not_refundable``, ``model_inactive``.
    """

    exit_code = 4
    default_code = "refused"


class BackendError(VideogenError):
    """Backend or provider unavailable or misconfigured (exit 5)."""

    exit_code = 5
    default_code = "backend_unavailable"


class ProviderError(BackendError):
    """The video provider could not be reached or answered unusably (exit 5)."""

    default_code = "provider_unavailable"


class ConfigError(BackendError):
    """Configuration is missing or contradictory (exit 5)."""

    default_code = "config_invalid"


class WaitTimeoutError(VideogenError):
    """`watch` reached its deadline; the job keeps running (exit 6)."""

    exit_code = 6
    default_code = "watch_timeout"


class InterruptedError_(VideogenError):
    """Ctrl-C (exit 130). The trailing underscore avoids shadowing the builtin."""

    exit_code = 130
    default_code = "interrupted"
