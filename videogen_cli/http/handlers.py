"""What each endpoint does, over the same core as the commands; no web framework here.

- generate-video = `videogen generate`: `JobService.prepare` then `JobService.generate`.
- get-video-status = `videogen status`: `JobService.refresh` (sync with the provider).
- models = `videogen models`: `JobService.list_models`, the active ones.

Only HTTP concerns live here: the header, the token's user, and the idempotent answer.
The answer to a generate-video request is derived from the stored job alone
(`first_answer`), so the first answer and every replay of it are the same bytes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from videogen_cli.core.jobs import JobService
from videogen_cli.core.requests import (
    check_idempotency_key,
    check_uuid,
    text_problem,
)
from videogen_cli.domain import Job, JobStatus, Model
from videogen_cli.errors import NotFoundError, UsageError, VideogenError
from videogen_cli.http.errors import Answer, ApiError, for_http, from_videogen_error
from videogen_cli.http.schemas import GenerateVideoRequest

# The backend plan's replay header, and Stripe's: the app may read either.
REPLAY_HEADERS = {"X-Idempotent-Replay": "true", "Idempotent-Replayed": "true"}
KEY_HINT = "send a new UUID as Idempotency-Key for each new request, and the same one to retry it"


def idempotency_key(raw: str | None) -> str:
    """The header's key, checked by the core's rule; ApiError 400 when missing or malformed."""
    value = (raw or "").strip()
    if not value:
        raise ApiError(
            400, "idempotency_key_missing", "the Idempotency-Key header is required", KEY_HINT
        )
    if len(value) >= 2 and value[0] == value[-1] == '"':
        # The IETF draft spells the key as a structured-field string ("…"): same key.
        value = value[1:-1]
    try:
        return check_idempotency_key(value)
    except UsageError as exc:
        raise ApiError(
            400, "invalid_idempotency_key", for_http(exc.message) or "", KEY_HINT
        ) from None


def generate_video(
    service: JobService, user_id: str, key: str, body: GenerateVideoRequest, notes: Any
) -> Answer:
    """Create the job once per key; any later call with the key gets the first answer."""
    _check_text(body.model_dump(exclude_none=True))
    if body.user_id is not None:
        try:
            sent = check_uuid(body.user_id, "user_id")
        except UsageError:
            sent = body.user_id  # not a UUID, so not the token's user either
        if sent != user_id:
            raise ApiError(
                403,
                "user_mismatch",
                "user_id is not the user of the token",
                "omit user_id: the token says who you are",
            )
    try:
        prepared = service.prepare(
            user_id=user_id,
            model_ref=body.model_id,
            prompt=body.prompt,
            image_url=body.image_url,
            settings=body.settings.model_dump(),
        )
        outcome = service.generate(prepared, key)
    except VideogenError as exc:
        raise from_videogen_error(exc) from None
    notes.job = outcome.job.job_id
    if outcome.replayed:
        if still_submitting(outcome.job):
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed",
                "retry with the same key in a moment: it then gets the first answer",
                headers={"Retry-After": "1"},
            )
        answer = first_answer(outcome.job)
        return replace(answer, headers={**answer.headers, **REPLAY_HEADERS})
    if still_submitting(outcome.job):
        # Charged, not handed over and not failed: the core left the job for `videogen
        # reconcile` (fal could not be reached and may or may not have the job).
        error = (
            from_videogen_error(outcome.submit_error)
            if outcome.submit_error is not None
            else ApiError(503, "provider_unavailable", "the job could not be submitted yet")
        )
        raise _with_job(error, outcome.job)
    return first_answer(outcome.job)


def _check_text(value: Any, where: str = "") -> None:
    """400 for a string no store can hold (a JSON `\\ud800` or `\\u0000` escape), before
    anything is read or charged: the CLI refuses the same arguments (exit 2)."""
    if isinstance(value, dict):
        for name, item in value.items():
            _check_text(item, f"{where}.{name}" if where else str(name))
    elif isinstance(value, str) and (problem := text_problem(value)):
        raise ApiError(
            400, "invalid_text", f"{where} {problem}", "send plain UTF-8 text (no NUL character)"
        )


def still_submitting(job: Job) -> bool:
    """Charged, but not yet handed to the provider: the first request is mid-way."""
    return job.status is JobStatus.PENDING and job.provider_request_id is None


def first_answer(job: Job) -> Answer:
    """The answer the first request with this job's key got, from the stored job alone.

    A job the provider accepted was answered `pending` (it had just been queued), whatever
    it became since; a job that never reached the provider failed at submission and was
    refunded, answered 502 with its job id.
    """
    if job.provider_request_id is not None:
        return Answer(
            200, {"job_id": job.job_id, "status": "pending", "credits_used": job.credits_used}
        )
    return ApiError(
        502,
        "submission_failed",
        job.error or "the provider did not accept the job",
        "the credits were refunded; fix the request and send it with a new Idempotency-Key",
        extra={"job_id": job.job_id},
    ).answer


def _with_job(error: ApiError, job: Job) -> ApiError:
    error.answer.body["job_id"] = job.job_id
    return error


def video_status(service: JobService, user_id: str, raw_job_id: str, notes: Any) -> Answer:
    """The job, synced with the provider exactly as `videogen status` does."""
    try:
        job_id = check_uuid(raw_job_id, "job_id")
    except UsageError as exc:
        raise ApiError(
            400, "invalid_job_id", exc.message, "send the job_id generate-video returned"
        ) from None
    notes.job = job_id
    try:
        job = service.get_job(job_id)
        if job.user_id != user_id:
            raise _job_not_found(job_id)
        outcome = service.refresh(job_id)
    except NotFoundError:
        raise _job_not_found(job_id) from None
    except VideogenError as exc:
        raise from_videogen_error(exc) from None
    job = outcome.job
    return Answer(
        200,
        {
            "job_id": job.job_id,
            "status": job.status.value,
            "video_url": job.video_url,
            "thumbnail_url": job.thumbnail_url,
            "error": job.error,
            "queue_position": job.queue_position,
            "credits_used": job.credits_used,
            "refunded_credits": job.refunded_credits,
        },
    )


def _job_not_found(job_id: str) -> ApiError:
    # The same answer, byte for byte, for a job that does not exist and for another
    # user's job: the app must not learn which job ids exist.
    return ApiError(
        404, "job_not_found", "job not found", "send the job_id generate-video returned"
    )


def models(service: JobService) -> Answer:
    try:
        rows = service.list_models()
    except VideogenError as exc:
        raise from_videogen_error(exc) from None
    return Answer(200, {"models": [model_json(m) for m in rows if m.active]})


def model_json(model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "slug": model.slug,
        "name": model.name,
        "credits_per_second": model.credits_per_second,
        "requires_image": model.requires_image,
        "settings": {
            name: {
                "type": spec.type,
                "allowed": list(spec.allowed) if spec.allowed is not None else None,
                "default": spec.default,
            }
            for name, spec in sorted(model.settings.items())
        },
    }
