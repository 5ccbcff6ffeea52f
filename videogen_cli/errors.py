"""The error hierarchy shared by every layer, and the one list of its machine codes.

Each error carries a stable machine ``code`` (it appears in the JSON error object of the
CLI and of `videogen serve`), a one-line ``message``, an optional ``hint`` naming the fix,
and the exit status of README "Exit codes". The CLI has one boundary that turns these
into output; nothing below the CLI prints.

``ErrorCode`` is every code the package can emit: the CLI's, serve's error bodies and the
SQL functions' ``raise ... using message = '<code>'`` (storage/sql/functions.sql). The
README table "Error codes" is this list; tests/test_docs.py checks both ways, and that
every code written in the sources is a member.
"""

from __future__ import annotations

import enum
from typing import ClassVar

SERVE_ONLY = None  # the exit code of a code only `videogen serve` answers with


class ErrorCode(enum.StrEnum):
    """A machine code, with the exit code it leads to and what it means.

    A member is a ``str`` equal to its value, so JSON output is the plain string.
    """

    exit_code: int | None
    meaning: str

    def __new__(cls, value: str, exit_code: int | None, meaning: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.exit_code = exit_code
        member.meaning = meaning
        return member

    # exit 1
    ERROR = "error", 1, "a failure with no more precise code (the base error's default)"
    JOB_FAILED = "job_failed", 1, "the job ended failed (`watch`, `generate --watch`)"
    NOT_IDEMPOTENT = "not_idempotent", 1, "`replay-key` found the key not idempotent"
    UNEXPECTED_ANSWER = (
        "unexpected_answer",
        1,
        "`smoke --endpoint`: the endpoint answered what its contract does not allow",
    )
    # exit 2
    INVALID_INPUT = "invalid_input", 2, "bad flags, fields or settings; a malformed id"
    INVALID_TEXT = "invalid_text", 2, "an argument or field that is not plain UTF-8 text"
    INVALID_ENDPOINT_ID = "invalid_endpoint_id", 2, "a fal endpoint id that is malformed"
    CONFIRMATION_REQUIRED = (
        "confirmation_required",
        2,
        "`refund`, `grant`, `sandbox reset` or paid `smoke` without `--yes` and no terminal",
    )
    MALFORMED_JSON = "malformed_json", SERVE_ONLY, "serve: the body is not valid JSON (400)"
    IDEMPOTENCY_KEY_MISSING = (
        "idempotency_key_missing",
        SERVE_ONLY,
        "serve: no `Idempotency-Key` header (400)",
    )
    INVALID_IDEMPOTENCY_KEY = (
        "invalid_idempotency_key",
        SERVE_ONLY,
        "serve: a malformed `Idempotency-Key` (400)",
    )
    INVALID_JOB_ID = "invalid_job_id", SERVE_ONLY, "serve: a malformed `job_id` (400)"
    INVALID_TOKEN = "invalid_token", SERVE_ONLY, "serve: a missing, invalid or expired token (401)"
    USER_MISMATCH = (
        "user_mismatch",
        SERVE_ONLY,
        "serve: the body's `user_id` is not the token's user (403)",
    )
    METHOD_NOT_ALLOWED = "method_not_allowed", SERVE_ONLY, "serve: a method the path refuses (405)"
    SUBMISSION_FAILED = (
        "submission_failed",
        SERVE_ONLY,
        "serve: fal did not take the job; it is failed and refunded (502)",
    )
    # exit 3
    NOT_FOUND = "not_found", 3, "something unknown (serve: an unknown path, 404)"
    JOB_NOT_FOUND = "job_not_found", 3, "no such job (serve: or another user's job)"
    USER_NOT_FOUND = "user_not_found", 3, "no credits account for this user"
    MODEL_NOT_FOUND = "model_not_found", 3, "no model with this slug or id"
    KEY_NOT_FOUND = "key_not_found", 3, "`replay-key`: no job was created with this key"
    # exit 4
    REFUSED = "refused", 4, "refused by a money or idempotency rule"
    INSUFFICIENT_CREDITS = "insufficient_credits", 4, "the balance is below the job's cost"
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        4,
        "the key was used before with a different request",
    )
    IDEMPOTENCY_KEY_IN_USE = (
        "idempotency_key_in_use",
        4,
        "the key is being processed by another request: retry with the same key",
    )
    REFUND_EXCEEDS_CREDITS = (
        "refund_exceeds_credits",
        4,
        "a refund larger than the credits the job used",
    )
    JOB_NOT_REFUNDABLE = "job_not_refundable", 4, "the job is not (yet) refundable"
    ALREADY_REFUNDED = "already_refunded", 4, "a second refund after a partial one"
    MODEL_INACTIVE = "model_inactive", 4, "the model is not active (serve: 404)"
    PROVIDER_REJECTED = "provider_rejected", 4, "fal definitively refused the submission"
    # exit 5
    BACKEND_UNAVAILABLE = "backend_unavailable", 5, "the database cannot be reached"
    BACKEND_AUTH = "backend_auth", 5, "the database refused the credentials"
    BACKEND_ERROR = "backend_error", 5, "the database failed or answered unusably"
    MIGRATION_MISSING = (
        "migration_missing",
        5,
        "the videogen functions are not in the database: `videogen db migrate`",
    )
    MIGRATION_FAILED = "migration_failed", 5, "`db migrate`: the migration failed"
    MIGRATION_NEWER = (
        "migration_newer",
        5,
        "`db migrate`: the database has a migration newer than this videogen",
    )
    MIGRATION_CHANGED = (
        "migration_changed",
        5,
        "`db migrate`: an applied migration differs from this videogen's",
    )
    DRIVER_MISSING = "driver_missing", 5, "`db migrate`: the Postgres driver is not installed"
    CONFIG_INVALID = "config_invalid", 5, "a configuration value that cannot work"
    MISSING_CREDENTIALS = "missing_credentials", 5, "a key or secret the command needs is not set"
    PROVIDER_UNAVAILABLE = "provider_unavailable", 5, "the video provider cannot be reached"
    PROVIDER_AUTH = "provider_auth", 5, "fal refused the key, or the key cannot be one"
    PROVIDER_NOT_FOUND = "provider_not_found", 5, "fal does not know the request"
    PROVIDER_TIMEOUT = "provider_timeout", 5, "fal did not answer in time"
    PROVIDER_PROTOCOL_ERROR = (
        "provider_protocol_error",
        5,
        "fal answered outside its queue protocol",
    )
    PROVIDER_OUTCOME_UNKNOWN = (
        "provider_outcome_unknown",
        5,
        "a submission whose outcome is unknown: check the fal dashboard before resubmitting",
    )
    PROVIDER_STREAM_BROKEN = "provider_stream_broken", 5, "fal's status stream broke"
    PROVIDER_STREAM_REFUSED = "provider_stream_refused", 5, "fal refused the status stream"
    PROVIDER_STREAM_QUIET = "provider_stream_quiet", 5, "fal's status stream fell silent"
    PROVIDER_MISMATCH = (
        "provider_mismatch",
        5,
        "`watch`: the job belongs to another provider than the configured one",
    )
    TARGET_UNREACHABLE = "target_unreachable", 5, "`smoke`: the target stopped answering"
    # exit 6
    WATCH_TIMEOUT = "watch_timeout", 6, "`watch` reached its deadline; the job keeps running"
    # exit 70
    INTERNAL_ERROR = "internal_error", 70, "a bug (serve: 500, never a traceback)"
    # exit 130
    INTERRUPTED = "interrupted", 130, "Ctrl-C"
    CANCELLED = "cancelled", 130, "Ctrl-C or Ctrl-D at a confirmation prompt: nothing changed"


class VideogenError(Exception):
    """Base class: a failure the user should see as one line plus a hint."""

    exit_code: ClassVar[int] = 1
    default_code: ClassVar[str] = ErrorCode.ERROR  # a member of ErrorCode

    def __init__(
        self, message: str, *, code: ErrorCode | str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: str = code or self.default_code
        self.hint = hint


class JobFailedError(VideogenError):
    """The job ended `failed` (exit 1)."""

    exit_code = 1
    default_code: ClassVar[str] = ErrorCode.JOB_FAILED


class NotIdempotentError(VideogenError):
    """`replay-key` found the key not idempotent (exit 1)."""

    exit_code = 1
    default_code: ClassVar[str] = ErrorCode.NOT_IDEMPOTENT


class UsageError(VideogenError):
    """Bad flags or input, settings the model does not allow, malformed ids (exit 2)."""

    exit_code = 2
    default_code: ClassVar[str] = ErrorCode.INVALID_INPUT


class NotFoundError(VideogenError):
    """Unknown job, key, user or model (exit 3)."""

    exit_code = 3
    default_code: ClassVar[str] = ErrorCode.NOT_FOUND


class RefusedError(VideogenError):
    """Refused by a money or idempotency rule (exit 4): the exit-4 codes of ``ErrorCode``."""

    exit_code = 4
    default_code: ClassVar[str] = ErrorCode.REFUSED


class BackendError(VideogenError):
    """Backend or provider unavailable or misconfigured (exit 5)."""

    exit_code = 5
    default_code: ClassVar[str] = ErrorCode.BACKEND_UNAVAILABLE


class ProviderError(BackendError):
    """The video provider could not be reached or answered unusably (exit 5)."""

    default_code: ClassVar[str] = ErrorCode.PROVIDER_UNAVAILABLE


class ConfigError(BackendError):
    """Configuration is missing or contradictory (exit 5)."""

    default_code: ClassVar[str] = ErrorCode.CONFIG_INVALID


class WaitTimeoutError(VideogenError):
    """`watch` reached its deadline; the job keeps running (exit 6)."""

    exit_code = 6
    default_code: ClassVar[str] = ErrorCode.WATCH_TIMEOUT


class InterruptedError_(VideogenError):
    """Ctrl-C (exit 130). The trailing underscore avoids shadowing the builtin."""

    exit_code = 130
    default_code: ClassVar[str] = ErrorCode.INTERRUPTED
