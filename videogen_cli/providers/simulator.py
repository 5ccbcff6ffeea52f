"""A local fal queue: an httpx transport that answers fal's queue protocol from SQLite.

``FalQueueProvider(api_key="sandbox", transport=SimulatorTransport(db), name="simulator")``
runs the real adapter code against it (``build_simulator`` does exactly that), so the
sandbox exercises the same parsing, retries and URL handling as production.

What it reproduces of fal's queue
(https://fal.ai/docs/documentation/model-apis/inference/queue): submit at the full
endpoint id, answers with ``request_id``, ``status_url``/``response_url``/``cancel_url``
without the sub-path, ``queue_position``, ``status: "IN_QUEUE"`` and ``x-fal-request-id``;
status/result/cancel served only at ``{owner}/{alias}/requests/{id}`` (result also at
``…/response``); 202 while queued or running, 200 once ``COMPLETED``; ``logs`` always
present; 401 without ``Authorization: Key <something>``; 404 for unknown endpoints and
request ids; light schema validation (each model's
``https://fal.ai/models/<endpoint_id>/llms.txt``) answered with fal's 422 ``detail`` list.

All state lives in the table ``sim_requests`` of the sandbox database, never in memory:
``generate`` in one process and ``watch`` in another see the same request. Time is wall
clock (``clock``) so separate processes agree on it; ``speed`` multiplies it.

The simulator's identity is ``simulator`` + ``sandbox:<uuid>``, the uuid made once and
kept in the table ``sim_sandbox`` of the same file: another VIDEOGEN_HOME (or another
machine) is another simulator, and never syncs this one's jobs (README "Each job stays
with its provider").

Timeline at speed 1, in seconds after submit: IN_QUEUE 0-2 (queue_position 1, then 0
from 1 s), IN_PROGRESS 2-7, COMPLETED from 7. Other outcomes: see ``PROMPT_WORDS``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

from videogen_cli.config import DEFAULT_FAL_QUEUE_URL
from videogen_cli.domain import ProviderIdentity
from videogen_cli.errors import ErrorCode, ProviderError
from videogen_cli.providers.fal import FalQueueProvider, app_base

__all__ = [
    "ENDPOINTS",
    "PROMPT_WORDS",
    "SIM_VIDEO_HOST",
    "SimulatorTransport",
    "build_simulator",
]

# Magic words, like a payment sandbox's test card numbers. The README and `--help` show
# this table; matching is case-insensitive and on whole words.
PROMPT_WORDS: dict[str, str] = {
    "sim:refuse": "fal refuses the submission (422 content_policy_violation): failed and refunded",
    "sim:fail": "generation fails: COMPLETED with error runner_disconnected; failed and refunded",
    "sim:result-error": "COMPLETED with no error, but the result is 422 no_media_generated: failed",
    "sim:slow": "stays IN_PROGRESS for 10 minutes, outliving a short --timeout",
    "sim:flaky": "status polls hit 429 and 503 gateway errors (4 calls in 6); it still completes",
    "sim:requeue": "goes IN_PROGRESS -> IN_QUEUE once (a server-side retry), then completes later",
    "sim:no-stream": "the status stream is refused (405): watch falls back to polling",
    "sim:stream-drop": "the status stream breaks after its first event; watch falls back to polls",
    "sim:stream-quiet": "the status stream goes silent after its first event, no keep-alives",
    "sim:lost": "status and result always answer 404: failed and refunded after 3 in a row",
    "sim:lost-once": "the first status call answers 404; then it runs and completes, no refund",
    "sim:retry-after": "status answers 429 (Retry-After: 1), then 503 (an HTTP-date); it completes",
}

# `.invalid` can never resolve (RFC 2606): a simulated URL cannot pass for a real video.
SIM_VIDEO_HOST = "https://sandbox.fal.invalid"

_TABLE_DDL = """
create table if not exists sim_requests (
    request_id   text primary key,
    endpoint_id  text not null,
    app_id       text not null,
    words        text not null,   -- JSON list of the PROMPT_WORDS in the prompt
    input        text not null,   -- the JSON input as submitted
    submitted_at real not null,   -- wall clock, shared by every process
    speed        real not null,   -- fixed at submit so every process sees one timeline
    status_calls integer not null default 0,
    cancelled_at real             -- set when a cancel removed the request from the queue
)
"""

_IDENTITY_DDL = """
create table if not exists sim_sandbox (
    id         integer primary key check (id = 1),
    sandbox_id text not null      -- random, made once: this simulator's identity
)
"""

_REQUEST_PATH = re.compile(
    r"^/(?P<app>[^/]+/[^/]+)/requests/(?P<id>[^/]+)"
    r"(?:/(?P<op>status/stream|status|response|cancel))?/?$"
)
# fal sends a keep-alive comment every 15 s on a status stream (https://fal.ai/docs/inference-api/queue/status-stream).
_KEEPALIVE_SECONDS = 15.0
_BOOLEAN_WORDS = {"1": True, "true": True, "0": False, "false": False}
_SLOW_SECONDS = 600.0
_NORMAL_RUN_SECONDS = 5.0

_IN_QUEUE = "IN_QUEUE"
_IN_PROGRESS = "IN_PROGRESS"
_COMPLETED = "COMPLETED"

_INGRESS_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


# --- the input schemas (https://fal.ai/models/<endpoint_id>/llms.txt), lightly ----------


@dataclass(frozen=True)
class _Field:
    kind: type  # int, str or bool
    allowed: tuple[object, ...] | None = None


_SORA_COMMON = {
    "duration": _Field(int, (4, 8, 12, 16, 20)),
    "delete_video": _Field(bool),
    "model": _Field(str, ("sora-2", "sora-2-2025-12-08", "sora-2-2025-10-06")),
    "detect_and_block_ip": _Field(bool),
}
_VEO_COMMON = {
    "duration": _Field(str, ("4s", "6s", "8s")),
    "negative_prompt": _Field(str),
    "resolution": _Field(str, ("720p", "1080p", "4k")),
    "generate_audio": _Field(bool),
    "seed": _Field(int),
    "auto_fix": _Field(bool),
    "safety_tolerance": _Field(str, ("1", "2", "3", "4", "5", "6")),
}


@dataclass(frozen=True)
class _Endpoint:
    requires_image: bool
    fields: dict[str, _Field]
    output: Callable[[str], dict[str, object]]


def _sora_output(request_id: str) -> dict[str, object]:
    return {
        "video": {"url": _video_url(request_id), "content_type": "video/mp4"},
        "video_id": f"video_{request_id.replace('-', '')[:24]}",
    }


def _veo_output(request_id: str) -> dict[str, object]:
    return {"video": {"url": _video_url(request_id)}}


def _video_url(request_id: str) -> str:
    return f"{SIM_VIDEO_HOST}/files/{request_id}/output.mp4"


ENDPOINTS: dict[str, _Endpoint] = {
    "fal-ai/sora-2/image-to-video": _Endpoint(
        True,
        {
            **_SORA_COMMON,
            "resolution": _Field(str, ("auto", "720p")),
            "aspect_ratio": _Field(str, ("auto", "9:16", "16:9")),
        },
        _sora_output,
    ),
    "fal-ai/sora-2/text-to-video": _Endpoint(
        False,
        {
            **_SORA_COMMON,
            "resolution": _Field(str),
            "aspect_ratio": _Field(str, ("9:16", "16:9")),
        },
        _sora_output,
    ),
    "fal-ai/veo3.1": _Endpoint(
        False, {**_VEO_COMMON, "aspect_ratio": _Field(str, ("16:9", "9:16"))}, _veo_output
    ),
    "fal-ai/veo3.1/image-to-video": _Endpoint(
        True, {**_VEO_COMMON, "aspect_ratio": _Field(str, ("auto", "16:9", "9:16"))}, _veo_output
    ),
}
_APPS = frozenset(app_base(endpoint_id) for endpoint_id in ENDPOINTS)


def _validate(endpoint: _Endpoint, body: object) -> list[dict[str, object]]:
    """fal-style (pydantic) error items for the input; empty when it is acceptable."""
    if not isinstance(body, dict):
        return [_item(["body"], "Input should be a valid dictionary", "dict_type", body)]
    errors: list[dict[str, object]] = []
    required = ["prompt", "image_url"] if endpoint.requires_image else ["prompt"]
    for name in required:
        if name not in body:
            errors.append(_item(["body", name], "Field required", "missing", body))
        elif not isinstance(body[name], str):
            errors.append(_type_error(name, str, body[name]))
    for name, spec in endpoint.fields.items():
        if name not in body:
            continue  # every optional field has a default
        value = body[name]
        # bool is an int in Python, never in JSON Schema.
        type_ok = isinstance(value, spec.kind) and (
            spec.kind is bool or not isinstance(value, bool)
        )
        if spec.allowed is not None and not (type_ok and value in spec.allowed):
            expected = _expected(spec.allowed)
            errors.append(
                _item(["body", name], f"Input should be {expected}", "enum", value, expected)
            )
        elif not type_ok:
            errors.append(_type_error(name, spec.kind, value))
    return errors


def _type_error(name: str, kind: type, value: object) -> dict[str, object]:
    label = {int: "integer", str: "string", bool: "boolean"}[kind]
    type_name = {int: "int_type", str: "string_type", bool: "bool_type"}[kind]
    return _item(["body", name], f"Input should be a valid {label}", type_name, value)


def _item(
    loc: list[str], msg: str, kind: str, value: object, expected: str | None = None
) -> dict[str, object]:
    item: dict[str, object] = {
        "loc": loc,
        "msg": msg,
        "type": kind,
        "url": f"https://docs.fal.ai/errors#{kind}",
        "input": value,
    }
    if expected is not None:
        item["ctx"] = {"expected": expected}
    return item


def _expected(values: tuple[object, ...]) -> str:
    shown = [f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _words_in(prompt: str) -> list[str]:
    return [
        word
        for word in PROMPT_WORDS
        # Whole words only: "sim:failure" is not "sim:fail".
        if re.search(rf"(?<![\w:-]){re.escape(word)}(?![\w-])", prompt, re.IGNORECASE)
    ]


# --- the timeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phase:
    state: str
    queue_position: int | None = None
    started_at: float | None = None  # simulated seconds at which the run started
    completed_at: float | None = None  # simulated seconds at which it completed


def _segments(words: list[str]) -> list[tuple[str, float, int | None]]:
    run = _SLOW_SECONDS if "sim:slow" in words else _NORMAL_RUN_SECONDS
    segments: list[tuple[str, float, int | None]] = [(_IN_QUEUE, 1.0, 1), (_IN_QUEUE, 1.0, 0)]
    if "sim:requeue" in words:
        # The runner dies 3 s in; fal puts the request back in the queue for 2 s.
        segments += [(_IN_PROGRESS, 3.0, None), (_IN_QUEUE, 2.0, 0)]
    segments.append((_IN_PROGRESS, run, None))
    return segments


def _next_change(words: list[str], elapsed: float) -> float | None:
    """Simulated seconds after submit of the next change of state, None once completed."""
    end = 0.0
    for _, length, _ in _segments(words):
        end += length
        if elapsed < end:
            return end
    return None


def _phase(words: list[str], elapsed: float) -> _Phase:
    """Where a request stands ``elapsed`` simulated seconds after submit."""
    segments = _segments(words)
    start = 0.0
    last_start: float | None = None
    for state, length, position in segments:
        if state == _IN_PROGRESS:
            last_start = start
        if elapsed < start + length:
            return _Phase(state, position, last_start if state == _IN_PROGRESS else None)
        start += length
    return _Phase(_COMPLETED, started_at=last_start, completed_at=start)


# --- the transport -----------------------------------------------------------------------


class SimulatorTransport(httpx.BaseTransport):
    """fal's queue protocol, answered from the ``sim_requests`` table of ``db_path``."""

    def __init__(
        self,
        db_path: Path,
        *,
        speed: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.db_path = Path(db_path)
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._db_pid: int | None = None

    # --- httpx -------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self._lock:
            try:
                return self._route(request)
            except sqlite3.Error as exc:
                # Every handler is one transaction, rolled back on error: nothing was
                # created, which is what a connection error means to the adapter.
                raise httpx.ConnectError(
                    f"simulator database unavailable: {exc}", request=request
                ) from exc

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def identity(self) -> ProviderIdentity:
        """``simulator`` + ``sandbox:<uuid>``, the uuid created once in this file."""
        with self._lock:
            try:
                db = self._connect()
                with _transaction(db):
                    db.execute(
                        "insert or ignore into sim_sandbox (id, sandbox_id) values (1, ?)",
                        (str(uuid.uuid4()),),
                    )
                    row = db.execute("select sandbox_id from sim_sandbox where id = 1").fetchone()
            except sqlite3.Error as exc:
                raise ProviderError(
                    f"simulator database unavailable: {exc}",
                    code=ErrorCode.PROVIDER_UNAVAILABLE,
                    hint="check VIDEOGEN_HOME points at a writable folder",
                ) from exc
        return ProviderIdentity("simulator", f"sandbox:{row[0]}")

    # --- routing -----------------------------------------------------------------------

    def _route(self, request: httpx.Request) -> httpx.Response:
        if not _authorized(request):
            return _json(401, {"detail": "Missing or invalid Authorization header (Key <key>)"})
        path = request.url.path
        endpoint_id = path.strip("/")
        if endpoint_id in ENDPOINTS:
            if request.method != "POST":
                return _json(405, {"detail": "Method Not Allowed"})
            return self._submit(request, endpoint_id)
        match = _REQUEST_PATH.match(path)
        if match is None or match["app"] not in _APPS:
            return _json(404, {"detail": f"Application '{endpoint_id}' not found"})
        app, request_id, op = match["app"], match["id"], match["op"]
        if op == "status" and request.method == "GET":
            return self._status(request, app, request_id)
        if op == "status/stream" and request.method == "GET":
            return self._status_stream(request, app, request_id)
        if op in (None, "response") and request.method == "GET":
            return self._result(request, app, request_id)
        if op == "cancel" and request.method == "PUT":
            return self._cancel(app, request_id)
        return _json(405, {"detail": "Method Not Allowed"})

    # --- operations --------------------------------------------------------------------

    def _submit(self, request: httpx.Request, endpoint_id: str) -> httpx.Response:
        endpoint = ENDPOINTS[endpoint_id]
        try:
            body: Any = json.loads(request.content)
        except ValueError:
            return _json(422, {"detail": [_item(["body"], "Invalid JSON", "json_invalid", None)]})
        errors = _validate(endpoint, body)
        if errors:
            return _json(422, {"detail": errors})
        words = _words_in(body["prompt"])
        if "sim:refuse" in words:
            msg = (
                "The content could not be processed because it contained material flagged "
                "by a content checker."
            )
            detail = _item(["body", "prompt"], msg, "content_policy_violation", body["prompt"])
            detail["ctx"] = {}
            return _json(422, {"detail": [detail]})
        request_id = str(uuid.uuid4())
        app = app_base(endpoint_id)
        db = self._connect()
        with _transaction(db):
            db.execute(
                "insert into sim_requests (request_id, endpoint_id, app_id, words, input,"
                " submitted_at, speed) values (?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    endpoint_id,
                    app,
                    json.dumps(words),
                    json.dumps(body),
                    self._clock(),
                    self.speed,
                ),
            )
        urls = _urls(request, app, request_id)
        return _json(
            200,
            {
                "status": _IN_QUEUE,
                "request_id": request_id,
                **urls,
                "queue_position": _phase(words, 0.0).queue_position,
                "gateway_request_id": request_id,
            },
            request_id,
        )

    def _status(self, request: httpx.Request, app: str, request_id: str) -> httpx.Response:
        raw_logs = request.url.params.get("logs")
        logs_on = _BOOLEAN_WORDS.get((raw_logs or "0").lower())
        if logs_on is None:
            return _json(
                422,
                {
                    "detail": [
                        _item(
                            ["query", "logs"],
                            "Input should be a valid boolean, unable to interpret input",
                            "bool_parsing",
                            raw_logs,
                        )
                    ]
                },
            )
        db = self._connect()
        with _transaction(db):
            row = db.execute(
                "update sim_requests set status_calls = status_calls + 1"
                " where request_id = ? and app_id = ?"
                " returning words, submitted_at, speed, status_calls, cancelled_at",
                (request_id, app),
            ).fetchone()
        if row is None:
            return _json(404, {"detail": "Request not found"}, request_id)
        words: list[str] = json.loads(row[0])
        before = row[3] - 1  # status calls before this one
        if "sim:lost" in words or ("sim:lost-once" in words and before == 0):
            return _json(404, {"detail": "Request not found"}, request_id)
        if "sim:retry-after" in words and before < 2:
            return self._retry_after_answer(before)
        if "sim:flaky" in words:
            trouble = _flaky_answer(before)
            if trouble is not None:
                return trouble
        state = _State.of(words, row[1], row[2], row[4], self._clock())
        body: dict[str, object] = {
            "status": state.phase.state,
            "request_id": request_id,
            **_urls(request, app, request_id),
            "logs": state.logs(row[1], row[2]) if logs_on else None,
        }
        if state.phase.state == _IN_QUEUE:
            body["queue_position"] = state.phase.queue_position
            return _json(202, body, request_id)
        if state.phase.state == _IN_PROGRESS:
            return _json(202, body, request_id)
        if state.cancelled:
            body["error"] = "Request cancelled by the client"
            body["error_type"] = "client_cancelled"
        else:
            body["metrics"] = {"inference_time": state.inference_time}
            if "sim:fail" in words:
                body["error"] = "Runner disconnected"
                body["error_type"] = "runner_disconnected"
        return _json(200, body, request_id)

    def _status_stream(self, request: httpx.Request, app: str, request_id: str) -> httpx.Response:
        """The status stream (fal's status-stream page): one ``data:`` event per change of state,
        a keep-alive comment every 15 simulated seconds, closed after COMPLETED."""
        db = self._connect()
        with _transaction(db):
            found = db.execute(
                "select words from sim_requests where request_id = ? and app_id = ?",
                (request_id, app),
            ).fetchone()
            if found is None:
                return _json(404, {"detail": "Request not found"}, request_id)
            words: list[str] = json.loads(found[0])
            # sim:lost and sim:lost-once exercise the not-found rule on status polls: their
            # stream is refused (the adapter then polls) without counting as a status call.
            if {"sim:no-stream", "sim:lost", "sim:lost-once"} & set(words):
                return _json(405, {"detail": "Method Not Allowed"}, request_id)
            # Opening a stream counts as a status call (sim:flaky refuses some).
            row = db.execute(
                "update sim_requests set status_calls = status_calls + 1"
                " where request_id = ? and app_id = ? returning words, status_calls",
                (request_id, app),
            ).fetchone()
        if "sim:flaky" in words:
            trouble = _flaky_answer(row[1] - 1)
            if trouble is not None:
                return trouble
        timeouts = request.extensions.get("timeout") or {}
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "x-fal-request-id": request_id},
            stream=_StatusEvents(self, request, app, request_id, words, timeouts.get("read")),
        )

    def _stream_state(
        self, request: httpx.Request, app: str, request_id: str
    ) -> tuple[dict[str, object], float | None]:
        """The status object now, and the real seconds until it next changes."""
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "select words, submitted_at, speed, cancelled_at from sim_requests"
                    " where request_id = ? and app_id = ?",
                    (request_id, app),
                )
                .fetchone()
            )
        if row is None:  # cannot happen: requests are never deleted
            return {"status": _COMPLETED, "request_id": request_id, "error": "gone"}, None
        words: list[str] = json.loads(row[0])
        now = self._clock()
        state = _State.of(words, row[1], row[2], row[3], now)
        body: dict[str, object] = {
            "status": state.phase.state,
            "request_id": request_id,
            **_urls(request, app, request_id),
        }
        if state.phase.state == _IN_QUEUE:
            body["queue_position"] = state.phase.queue_position
        elif state.phase.state == _COMPLETED:
            if state.cancelled:
                body["error"] = "Request cancelled by the client"
                body["error_type"] = "client_cancelled"
            elif "sim:fail" in words:
                body["error"] = "Runner disconnected"
                body["error_type"] = "runner_disconnected"
            return body, None
        body["logs"] = None
        change = _next_change(words, (now - row[1]) * row[2])
        return body, None if change is None else max(0.0, change / row[2] + row[1] - now)

    def _result(self, request: httpx.Request, app: str, request_id: str) -> httpx.Response:
        row = (
            self._connect()
            .execute(
                "select endpoint_id, words, submitted_at, speed, cancelled_at from sim_requests"
                " where request_id = ? and app_id = ?",
                (request_id, app),
            )
            .fetchone()
        )
        if row is None or "sim:lost" in json.loads(row[1]):
            return _json(404, {"detail": "Request not found"}, request_id)
        words: list[str] = json.loads(row[1])
        state = _State.of(words, row[2], row[3], row[4], self._clock())
        if state.phase.state != _COMPLETED:
            # What a third-party emulator answers; fal's own answer here is not documented.
            return _json(400, {"detail": "Request is still in progress"}, request_id)
        if state.cancelled:
            return _flat_error(
                499, "Request cancelled by the client", "client_cancelled", request_id
            )
        if "sim:fail" in words:
            return _flat_error(503, "Runner disconnected", "runner_disconnected", request_id)
        if "sim:result-error" in words:
            item = _item(
                ["body"],
                "No media was generated for this request.",
                "no_media_generated",
                None,
            )
            return _json(422, {"detail": [item]}, request_id)
        return _json(200, ENDPOINTS[row[0]].output(request_id), request_id)

    def _retry_after_answer(self, before: int) -> httpx.Response:
        """sim:retry-after: both forms of the header (RFC 9110 §10.2.3), one each."""
        if before == 0:
            return httpx.Response(
                429, json={"detail": "Too many requests, slow down"}, headers={"retry-after": "1"}
            )
        # An HTTP-date has whole seconds: the first whole second at least 1 s from now.
        at = datetime.fromtimestamp(math.ceil(self._clock() + 1), UTC)
        when = format_datetime(at, usegmt=True)
        return httpx.Response(
            503, text=_INGRESS_503, headers={"content-type": "text/html", "retry-after": when}
        )

    def _cancel(self, app: str, request_id: str) -> httpx.Response:
        db = self._connect()
        with _transaction(db):
            row = db.execute(
                "select words, submitted_at, speed, cancelled_at from sim_requests"
                " where request_id = ? and app_id = ?",
                (request_id, app),
            ).fetchone()
            if row is None:
                return _json(404, {"status": "NOT_FOUND"}, request_id)
            now = self._clock()
            state = _State.of(json.loads(row[0]), row[1], row[2], row[3], now)
            if state.phase.state == _COMPLETED:
                return _json(400, {"status": "ALREADY_COMPLETED"}, request_id)
            if state.phase.state == _IN_QUEUE:
                # Removed from the queue: it never runs and ends COMPLETED/client_cancelled.
                db.execute(
                    "update sim_requests set cancelled_at = ? where request_id = ?",
                    (now, request_id),
                )
            # IN_PROGRESS: the runner is only signalled and, as fal warns, may still
            # complete; this simulated runner always does.
        return _json(202, {"status": "CANCELLATION_REQUESTED"}, request_id)

    # --- database ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # A forked child must not share its parent's SQLite handle.
        if self._db is not None and self._db_pid == os.getpid():
            return self._db
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            str(self.db_path), timeout=10.0, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("pragma busy_timeout = 10000")
            db.execute("pragma journal_mode = wal")
            db.execute(_TABLE_DDL)
            db.execute(_IDENTITY_DDL)
        except sqlite3.Error:
            db.close()
            raise
        self._db, self._db_pid = db, os.getpid()
        return db


@dataclass(frozen=True)
class _State:
    phase: _Phase
    cancelled: bool
    inference_time: float | None

    @classmethod
    def of(
        cls,
        words: list[str],
        submitted_at: float,
        speed: float,
        cancelled_at: float | None,
        now: float,
    ) -> _State:
        if cancelled_at is not None:
            return cls(_Phase(_COMPLETED), cancelled=True, inference_time=None)
        phase = _phase(words, (now - submitted_at) * speed)
        run = None
        if phase.completed_at is not None and phase.started_at is not None:
            run = phase.completed_at - phase.started_at
        return cls(phase, cancelled=False, inference_time=run)

    def logs(self, submitted_at: float, speed: float) -> list[dict[str, str]]:
        """A few runner lines, stamped at the simulated moments they happened."""

        def line(at: float, message: str) -> dict[str, str]:
            stamp = datetime.fromtimestamp(submitted_at + at / speed, UTC)
            iso = stamp.isoformat().replace("+00:00", "Z")
            return {"message": message, "timestamp": iso, "level": "INFO", "source": "USER"}

        lines: list[dict[str, str]] = []
        if self.phase.started_at is not None:
            lines.append(line(self.phase.started_at, "simulated runner: generating video"))
        if self.phase.completed_at is not None:
            lines.append(line(self.phase.completed_at, "simulated runner: done"))
        return lines


class _StatusEvents(httpx.SyncByteStream):
    """The body of a status stream, produced as the simulated timeline advances.

    Waits go through the transport's ``sleep`` (a fake clock in tests) and honour the
    client's read timeout the way a socket would: a wait longer than it ends in
    ``httpx.ReadTimeout``.
    """

    def __init__(
        self,
        transport: SimulatorTransport,
        request: httpx.Request,
        app: str,
        request_id: str,
        words: list[str],
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._request = request
        self._app = app
        self._request_id = request_id
        self._words = words
        self._read_timeout = read_timeout

    def _wait(self, seconds: float) -> None:
        if self._read_timeout is not None and seconds > self._read_timeout:
            self._transport._sleep(self._read_timeout)
            raise httpx.ReadTimeout("simulated read timeout", request=self._request)
        self._transport._sleep(seconds)

    def __iter__(self) -> Iterator[bytes]:
        keepalive = _KEEPALIVE_SECONDS / self._transport.speed
        sent: dict[str, object] | None = None
        events = 0
        while True:
            body, change_in = self._transport._stream_state(
                self._request, self._app, self._request_id
            )
            if body != sent:
                yield f"data: {json.dumps(body)}\n\n".encode()
                sent = body
                events += 1
                if body["status"] == _COMPLETED:
                    return  # fal closes the stream after COMPLETED
                if "sim:stream-drop" in self._words:
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body",
                        request=self._request,
                    )
                if "sim:stream-quiet" in self._words:
                    self._wait(float("inf"))
            if change_in is not None and change_in <= keepalive:
                self._wait(change_in)
            else:
                self._wait(keepalive)
                yield b": keep-alive\n\n"


def _flaky_answer(call_number: int) -> httpx.Response | None:
    """4 failing calls out of every 6: 429, 503, 429, 503, ok, ok.

    With the adapter's 3 attempts, one status read gives up (3 failures), the next
    succeeds on its second attempt and the one after on its first.
    """
    slot = call_number % 6
    if slot in (0, 2):
        return _json(429, {"detail": "Too many requests, slow down"})
    if slot in (1, 3):
        # An ingress error: nginx answered, the queue never saw it (no x-fal-request-id).
        return httpx.Response(503, text=_INGRESS_503, headers={"content-type": "text/html"})
    return None


def _authorized(request: httpx.Request) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "key" and bool(key.strip())  # schemes are case-insensitive


def _urls(request: httpx.Request, app: str, request_id: str) -> dict[str, str]:
    # Answer on the host the client used, so any base URL works.
    base = (
        f"{request.url.scheme}://{request.url.netloc.decode('ascii')}/{app}/requests/{request_id}"
    )
    return {
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
    }


def _json(status: int, body: object, request_id: str | None = None) -> httpx.Response:
    headers = {"x-fal-request-id": request_id} if request_id else {}
    return httpx.Response(status, json=body, headers=headers)


def _flat_error(status: int, detail: str, error_type: str, request_id: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"detail": detail, "error_type": error_type},
        headers={"x-fal-request-id": request_id, "x-fal-error-type": error_type},
    )


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: one short write per request."""
    db.execute("begin immediate")
    try:
        yield db
    except BaseException:
        if db.in_transaction:  # SQLite may already have rolled back on its own
            db.execute("rollback")
        raise
    db.execute("commit")


def build_simulator(
    db_path: Path,
    *,
    speed: float = 1.0,
    base_url: str = DEFAULT_FAL_QUEUE_URL,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> FalQueueProvider:
    """The real adapter on a ``SimulatorTransport`` over ``db_path``: the sandbox provider."""
    transport = SimulatorTransport(db_path, speed=speed, clock=clock, sleep=sleep)
    return FalQueueProvider(
        "sandbox",
        base_url=base_url,
        transport=transport,
        sleep=sleep,
        monotonic=monotonic,
        now=clock,
        name="simulator",
        identity=transport.identity,
    )
