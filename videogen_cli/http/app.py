"""The FastAPI app of `videogen serve`: Supabase's URL layout over the core.

Routes are thin: they take the user the edge checked (edge.py), hand the request to
handlers.py, and send the answer's bytes. openapi.json is FastAPI's document of these
same routes and pydantic models (schemas.py), with the framework's own validation error
shapes replaced by ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from videogen_cli import __version__
from videogen_cli.config import Settings
from videogen_cli.core.jobs import JobService
from videogen_cli.core.requests import MIN_KEY_CHARS
from videogen_cli.errors import ErrorCode, VideogenError
from videogen_cli.http import handlers
from videogen_cli.http.edge import Edge
from videogen_cli.http.errors import (
    FUNCTIONS,
    STATUS_MEANINGS,
    Answer,
    ApiError,
    error_body,
    from_videogen_error,
    render,
)
from videogen_cli.http.handlers import KEY_HINT
from videogen_cli.http.schemas import (
    ErrorResponse,
    GenerateVideoRequest,
    GenerateVideoResponse,
    HealthResponse,
    ModelsResponse,
    SubmissionFailedResponse,
    VideoStatusResponse,
)
from videogen_cli.http.services import ServicePool
from videogen_cli.http.tokens import HS256Verifier, TokenVerifier, load_secret
from videogen_cli.ports import KEY_MAX_LENGTH

GENERATE = f"{FUNCTIONS}/generate-video"
STATUS = f"{FUNCTIONS}/get-video-status"
MODELS = f"{FUNCTIONS}/models"
OPENAPI = f"{FUNCTIONS}/openapi.json"
PROTECTED = frozenset({GENERATE, STATUS, MODELS})

DESCRIPTION = """\
The backend plan's Edge Functions, served by `videogen serve` over the same core as the
`videogen` commands. Every endpoint but /healthz and this document needs
`Authorization: Bearer <user JWT>`; the user is the token's `sub`. Errors are
`{"error": {"code", "message", "hint"}}`.
"""

_bearer = HTTPBearer(
    bearerFormat="JWT",
    description="A user token (HS256, `sub` = user id). Sandbox: `videogen token`.",
    auto_error=False,
)


def current_user(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The token's user, checked by the edge before any route runs (declared here for the
    bearer scheme in openapi.json)."""
    user: str = request.state.user
    return user


User = Annotated[str, Depends(current_user)]


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        model = SubmissionFailedResponse if status == 502 else ErrorResponse
        out[status] = {"model": model, "description": STATUS_MEANINGS[status]}
    return out


_REPLAY_HEADERS_DOC = {
    name: {
        "description": "`true` when this is the first answer to this key, replayed",
        "schema": {"type": "string", "enum": ["true"]},
    }
    for name in handlers.REPLAY_HEADERS
}


def create_app(
    settings: Settings,
    *,
    service_factory: Callable[[], JobService] | None = None,
    verifier: TokenVerifier | None = None,
    log: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app on the configured backend and provider (or the given test doubles)."""
    if service_factory is None:
        from videogen_cli.bootstrap import build_service

        def service_factory() -> JobService:
            return build_service(settings)

    pool = ServicePool(service_factory)
    verifier = verifier or HS256Verifier(load_secret(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

    app = FastAPI(
        title="videogen serve",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=OPENAPI,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pool = pool

    @app.post(
        GENERATE,
        operation_id="generateVideo",
        summary="Create a video job, charging credits exactly once per Idempotency-Key",
        response_model=GenerateVideoResponse,
        responses={
            200: {"headers": _REPLAY_HEADERS_DOC},
            **_responses(400, 401, 402, 403, 404, 409, 422, 500, 502, 503),
        },
    )
    def generate_video(
        request: Request,
        body: GenerateVideoRequest,
        user: User,
        idempotency_key: Annotated[
            str,
            Header(
                alias="Idempotency-Key",
                description="A new UUID per request; the same key to retry it (same request: "
                "the first answer again; another request: 422).",
                json_schema_extra={"minLength": MIN_KEY_CHARS, "maxLength": KEY_MAX_LENGTH},
            ),
        ],
    ) -> Response:
        key = handlers.idempotency_key(idempotency_key)
        request.state.key = key
        with pool.lease() as service:
            return _send(handlers.generate_video(service, user, key, body, request.state))

    @app.get(
        STATUS,
        operation_id="getVideoStatus",
        summary="A job's state, synced with the provider like `videogen status`",
        response_model=VideoStatusResponse,
        responses=_responses(400, 401, 404, 500, 503),
    )
    def get_video_status(
        request: Request,
        user: User,
        job_id: Annotated[str, Query(json_schema_extra={"format": "uuid"})],
    ) -> Response:
        with pool.lease() as service:
            return _send(handlers.video_status(service, user, job_id, request.state))

    @app.get(
        MODELS,
        operation_id="listModels",
        summary="The active models and the settings each accepts",
        response_model=ModelsResponse,
        responses=_responses(401, 500, 503),
    )
    def list_models(user: User) -> Response:
        with pool.lease() as service:
            return _send(handlers.models(service))

    @app.get(
        "/healthz",
        operation_id="health",
        summary="Liveness, and which backend and provider answer (simulator or real fal)",
        response_model=HealthResponse,
        responses=_responses(500),
    )
    def healthz() -> Response:
        return _send(
            Answer(
                200, {"status": "ok", "backend": settings.backend, "provider": settings.provider}
            )
        )

    _install_error_handlers(app)
    _install_openapi(app)
    app.add_middleware(Edge, verifier=verifier, protected=PROTECTED, log=log or _stderr_log)
    return app


def _stderr_log(text: str) -> None:
    from videogen_cli.http.access_log import write

    write(text)


def _send(answer: Answer) -> Response:
    return Response(
        answer.content(),
        status_code=answer.status,
        headers=answer.headers,
        media_type="application/json",
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _send(exc.answer)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _send(ApiError(400, *_describe_validation(exc.errors())).answer)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            body = error_body(
                ErrorCode.NOT_FOUND,
                f"no endpoint {request.url.path}",
                f"the endpoints are described at {OPENAPI}",
            )
        elif exc.status_code == 405:
            body = error_body(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"{request.method} is not allowed on {request.url.path}",
                f"the endpoints are described at {OPENAPI}",
            )
        else:
            body = error_body(f"http_{exc.status_code}", str(exc.detail), None)
        return Response(
            render(body),
            status_code=exc.status_code,
            headers=exc.headers,
            media_type="application/json",
        )

    async def core_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, VideogenError)
        return _send(from_videogen_error(exc).answer)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(VideogenError, core_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _describe_validation(errors: Any) -> tuple[ErrorCode, str, str]:
    """(code, message, hint) for the first problem pydantic found, in the request's terms."""
    errors = list(errors)
    for err in errors:
        if err.get("type") == "json_invalid":
            return ErrorCode.MALFORMED_JSON, "the body is not valid JSON", "send a JSON object"
    for err in errors:
        place = tuple(err.get("loc", ()))
        if place[:1] == ("header",) and str(place[-1]).lower() == "idempotency-key":
            return (
                ErrorCode.IDEMPOTENCY_KEY_MISSING,
                "the Idempotency-Key header is required",
                KEY_HINT,
            )
    first = errors[0] if errors else {}
    loc = _field_path(first.get("loc", ()))
    messages = [
        str(e.get("msg", "invalid")) for e in errors if _field_path(e.get("loc", ())) == loc
    ]
    where = ".".join(loc[1:]) if loc[:1] == ["body"] else ".".join(loc)
    if loc[:1] == ["body"] and len(loc) == 1:
        where = "body"
    said = " or ".join(dict.fromkeys(messages))  # a union field: one message per member
    message = f"{where}: {said}" if where else said
    hint = f"the request's schema is at {OPENAPI}"
    if loc[:2] == ["query", "job_id"]:
        return ErrorCode.INVALID_JOB_ID, message, "send the job_id generate-video returned"
    return ErrorCode.INVALID_INPUT, message, hint


# The tags pydantic adds to a location inside a union (`duration: int | str`).
_UNION_TAGS = frozenset({"int", "str", "bool", "float", "none", "dict", "list"})


def _field_path(loc: Any) -> list[str]:
    return [str(part) for part in loc if str(part) not in _UNION_TAGS]


def _install_openapi(app: FastAPI) -> None:
    """FastAPI's document, with our 422 kept and its own validation error shape removed."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path in doc.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                default_422 = responses.get("422", {})
                if "HTTPValidationError" in str(default_422):
                    del responses["422"]
        schemas = doc.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
