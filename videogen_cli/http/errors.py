"""Answers and errors of the endpoints: one JSON rendering and one status for each error.

Every error body is `{"error": {"code", "message", "hint"}}` (the CLI's `--json` error
object); the status follows README "For the iOS team: `videogen serve`" (status table).
The core raises `VideogenError`s worded for the terminal; `from_videogen_error` keeps
their code and message and names the JSON fields instead of the CLI flags.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from videogen_cli.errors import (
    BackendError,
    ErrorCode,
    NotFoundError,
    RefusedError,
    UsageError,
    VideogenError,
)

FUNCTIONS = "/functions/v1"

# What each documented status means; also the descriptions in openapi.json.
STATUS_MEANINGS: dict[int, str] = {
    400: "malformed JSON, fields or settings; missing or malformed Idempotency-Key; "
    "malformed job id",
    401: "missing, invalid or expired token",
    402: "insufficient credits (nothing charged)",
    403: "body user_id differs from the token's user",
    404: "unknown model; unknown job, or a job of another user (never which)",
    405: "method not allowed on this path",
    409: "the same Idempotency-Key is still being processed by another request",
    422: "Idempotency-Key reused with a different request",
    500: "internal error (short message, never a traceback)",
    502: "fal refused the submission: the job is failed and refunded; the body has job_id",
    503: "backend or provider unavailable",
}

# The CLI flags the core's messages name, and the request fields they are over HTTP.
_FIELDS = {
    "--image-url": "image_url",
    "--prompt": "prompt",
    "--duration": "settings.duration",
    "--resolution": "settings.resolution",
    "--aspect-ratio": "settings.aspect_ratio",
    "--user": "user_id",
    "--idempotency-key": "Idempotency-Key",
    "videogen models": f"GET {FUNCTIONS}/models",
}
_FIELD_PATTERN = re.compile("|".join(re.escape(k) for k in sorted(_FIELDS, key=len, reverse=True)))


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return render(self.body)


class ApiError(Exception):
    """An error answer, raised anywhere below the routes."""

    def __init__(
        self,
        status: int,
        code: ErrorCode | str,
        message: str,
        hint: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.answer = Answer(
            status,
            {**error_body(code, message, hint), **(extra or {})},
            dict(headers or {}),
        )


def render(body: dict[str, Any]) -> bytes:
    """The one JSON encoding of every answer: a replay is byte-identical to the first."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def error_body(code: ErrorCode | str, message: str, hint: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint}}


def for_http(text: str | None) -> str | None:
    """A core message with the CLI's flag names replaced by the request's field names."""
    if text is None:
        return None
    return _FIELD_PATTERN.sub(lambda m: _FIELDS[m.group(0)], text)


def from_videogen_error(exc: VideogenError) -> ApiError:
    message, hint = for_http(exc.message) or "", for_http(exc.hint)
    if isinstance(exc, UsageError):
        return ApiError(400, exc.code, message, hint)
    if isinstance(exc, NotFoundError):
        if exc.code == ErrorCode.USER_NOT_FOUND:
            # A signed-in user with no credits account yet has a balance of 0: for the
            # app that is "buy credits", not "who are you".
            return ApiError(
                402,
                ErrorCode.INSUFFICIENT_CREDITS,
                f"{message}: this user has no credits yet",
                "credits are added with: videogen grant --user <user id> --credits N",
            )
        if exc.code == ErrorCode.MODEL_NOT_FOUND:
            hint = f"GET {FUNCTIONS}/models lists the models"
        return ApiError(404, exc.code, message, hint)
    if isinstance(exc, RefusedError):
        if exc.code == ErrorCode.INSUFFICIENT_CREDITS:
            return ApiError(402, exc.code, message, hint)
        if exc.code == ErrorCode.MODEL_INACTIVE:  # not in the catalog the app can see
            return ApiError(404, exc.code, message, f"GET {FUNCTIONS}/models lists the models")
        return ApiError(422, exc.code, message, hint)
    if isinstance(exc, BackendError):
        return ApiError(503, exc.code, message, hint or "try again shortly")
    return internal_error(exc)


def internal_error(exc: BaseException) -> ApiError:
    """A bug: its type only; the traceback is not the client's business."""
    return ApiError(
        500,
        ErrorCode.INTERNAL_ERROR,
        f"internal error ({type(exc).__name__})",
        "the server log has the request; report it with the time of the request",
    )
