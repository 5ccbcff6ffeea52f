"""The request and response bodies of the endpoints: one set of pydantic models that both
validates requests and generates openapi.json, so the contract cannot drift.

These models check only the shape (types, which fields exist). Every rule about values
(which settings a model allows, prompt length, key format, prices) stays in the core
(`core/requests.py`); where the contract documents such a limit, the number comes from
the core's constant and is documentation only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from videogen_cli.core.requests import MAX_PROMPT_CHARS

JobStatusName = Literal["pending", "processing", "completed", "failed"]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoSettings(_Shape):
    duration: StrictInt | StrictStr | None = Field(
        None, description='Seconds as the model allows them: 4 or "4s" (see /models).'
    )
    resolution: StrictStr | None = Field(None, examples=["720p"])
    aspect_ratio: StrictStr | None = Field(None, examples=["16:9"])
    fps: StrictInt | None = Field(
        None, description="Accepted only by models that list it in /models (none today)."
    )


class GenerateVideoRequest(_Shape):
    model_id: StrictStr = Field(description="Model id (UUID) or slug, from /models.")
    prompt: StrictStr = Field(json_schema_extra={"maxLength": MAX_PROMPT_CHARS})
    image_url: StrictStr | None = Field(
        None, description="First frame (http(s) URL or data:image URI); image-to-video only."
    )
    settings: VideoSettings = Field(default_factory=VideoSettings)
    user_id: StrictStr | None = Field(
        None, description="Optional; when sent it must be the token's user (else 403)."
    )


class GenerateVideoResponse(BaseModel):
    job_id: str = Field(json_schema_extra={"format": "uuid"})
    status: JobStatusName
    credits_used: int


class VideoStatusResponse(BaseModel):
    job_id: str = Field(json_schema_extra={"format": "uuid"})
    status: JobStatusName
    video_url: str | None
    thumbnail_url: str | None
    error: str | None
    queue_position: int | None
    credits_used: int
    refunded_credits: int


class SettingInfo(BaseModel):
    type: str = Field(description='"integer", "string" or "boolean"')
    allowed: list[int | str | bool] | None
    default: int | str | bool | None


class ModelInfo(BaseModel):
    id: str
    slug: str
    name: str
    credits_per_second: int
    requires_image: bool
    settings: dict[str, SettingInfo]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class HealthResponse(BaseModel):
    status: Literal["ok"]
    backend: str = Field(description='"sandbox", "postgres" or "supabase"')
    provider: str = Field(description='"fal" or "simulator"')


class ErrorDetail(BaseModel):
    code: str
    message: str
    hint: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class SubmissionFailedResponse(BaseModel):
    """502: fal did not take the job; it is failed and its credits are refunded."""

    error: ErrorDetail
    job_id: str = Field(json_schema_extra={"format": "uuid"})
