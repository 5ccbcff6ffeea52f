"""The debug log: one line per provider HTTP call and per store call, secrets redacted.

Off unless asked for: `--log-file PATH`, `VIDEOGEN_LOG=stderr|PATH`, or `--debug`
(stderr). `VIDEOGEN_LOG_FORMAT=json` writes one JSON object per line instead of text,
for log shippers. Built on the standard library's `logging` (logger `videogen.calls`);
the seams hook in with `http_event_hooks()` (the fal adapter's httpx client) and
`wrap_store()` (bootstrap.build_service), so nothing else knows the log exists.

Every line passes through `redact()` before it is written: the values of FAL_KEY,
SUPABASE_SERVICE_ROLE_KEY and the database password, and anything shaped like a
credential (Authorization values, JWTs, `key=`/`token=` query parameters, a password in
a connection URL), whatever the caller put in the record.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

LOGGER = logging.getLogger("videogen.calls")
MASK = "****"
_SECRET_VARIABLES = ("FAL_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_KEY")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values: "Key <fal key>", "Bearer <jwt>", "Basic …".
    (
        re.compile(r"(?i)\b(key|bearer|basic|token)(\s+|=|:\s*)[A-Za-z0-9._~+/=:-]{8,}"),
        r"\1\2" + MASK,
    ),
    # Query parameters that carry credentials.
    (
        re.compile(
            r"(?i)([?&;](?:api[_-]?key|apikey|key|token|access_token|secret|password|sig"
            r"|signature)=)[^&;#\s\"]+"
        ),
        r"\1" + MASK,
    ),
    # A password in a connection URL: scheme://user:password@host.
    (re.compile(r"(://[^:/@\s\"]+:)[^@\s\"]+@"), r"\1" + MASK + "@"),
    # JWTs (Supabase service_role and anon keys are JWTs).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), MASK),
    # Supabase secret API keys.
    (re.compile(r"\bsb_secret_[A-Za-z0-9_-]+"), MASK),
)

_T = TypeVar("_T")


def secrets_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """The secret values configured in the environment, longest first."""
    values = [env.get(name, "").strip() for name in _SECRET_VARIABLES]
    dsn = env.get("VIDEOGEN_DATABASE_URL", "").strip()
    if dsn:
        try:
            password = urlsplit(dsn).password
        except ValueError:
            password = None
        if password:
            values.append(password)
    # Very short values would mask ordinary words; the patterns still catch their context.
    return tuple(sorted({v for v in values if len(v) >= 4}, key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _Formatter(logging.Formatter):
    """Text or JSON lines; each call's fields come in `record.call`."""

    def __init__(self, *, as_json: bool, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._json = as_json
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "call", {}) or {})
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        if self._json:
            line = json.dumps({"ts": ts.replace("+00:00", "Z"), **fields}, ensure_ascii=False)
        else:
            parts = [ts.replace("+00:00", "Z"), str(fields.pop("event", "call"))]
            for name in ("backend", "method", "path", "call", "status"):
                if name in fields:
                    parts.append(str(fields.pop(name)))
            if "ms" in fields:
                parts.append(f"{fields.pop('ms')}ms")
            parts += [f"{k}={v}" for k, v in fields.items() if v is not None]
            line = " ".join(parts)
        return redact(line, self._secrets)


_HANDLER_NAME = "videogen.calls"  # marks the handler `configure` installed and replaces


def configure(
    *, log_file: str | None = None, debug: bool = False, env: Mapping[str, str] | None = None
) -> None:
    """Send the call log where the options and environment say; raises OSError for a bad file.

    Called once per command by the root callback; a second call replaces the first's
    handler (tests invoke many commands in one process).
    """
    env = os.environ if env is None else env
    for old in [h for h in LOGGER.handlers if h.get_name() == _HANDLER_NAME]:
        LOGGER.removeHandler(old)
        old.close()
    target = (log_file or env.get("VIDEOGEN_LOG", "")).strip() or ("stderr" if debug else "")
    if target.lower() in ("", "0", "off", "none"):
        LOGGER.setLevel(logging.WARNING)
        return
    handler: logging.Handler
    if target.lower() == "stderr":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(os.path.expanduser(target), encoding="utf-8")
    handler.set_name(_HANDLER_NAME)
    as_json = env.get("VIDEOGEN_LOG_FORMAT", "").strip().lower() == "json"
    handler.setFormatter(_Formatter(as_json=as_json, secrets=secrets_from_env(env)))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False


def enabled() -> bool:
    return LOGGER.isEnabledFor(logging.DEBUG)


def log_call(**fields: Any) -> None:
    LOGGER.debug("%s", fields.get("event", "call"), extra={"call": fields})


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# --- provider: httpx event hooks -----------------------------------------------------------


def http_event_hooks() -> dict[str, list[Callable[[Any], None]]]:
    """Hooks for an `httpx.Client(event_hooks=...)`: one line per response received.

    Cheap when the log is off (one level check per request). Only the URL path and a
    redacted query are logged, never headers or bodies.
    """

    def on_request(request: Any) -> None:
        if enabled():
            request.extensions["videogen_started"] = time.perf_counter()

    def on_response(response: Any) -> None:
        if not enabled():
            return
        request = response.request
        started = request.extensions.get("videogen_started")
        query = request.url.query.decode("ascii", "replace") if request.url.query else ""
        headers = response.headers
        log_call(
            event="http",
            method=request.method,
            path=request.url.path + (f"?{query}" if query else ""),
            host=request.url.host,
            status=response.status_code,
            ms=_ms(started) if started is not None else None,
            request_id=headers.get("x-fal-request-id") or headers.get("x-request-id"),
        )

    return {"request": [on_request], "response": [on_response]}


def log_transport_error(exc: Any) -> None:
    """The line for a call that got no response (refused, reset, timed out): the response
    hook never runs for it, so the provider calls this where it catches the error; the
    status field names the error (`ConnectError`, `ReadTimeout`)."""
    if not enabled():
        return
    try:
        request = exc.request
    except RuntimeError:  # httpx raised it before the request existed
        return
    started = request.extensions.get("videogen_started")
    query = request.url.query.decode("ascii", "replace") if request.url.query else ""
    log_call(
        event="http",
        method=request.method,
        path=request.url.path + (f"?{query}" if query else ""),
        host=request.url.host,
        status=type(exc).__name__,
        ms=_ms(started) if started is not None else None,
    )


# --- store: a logging proxy ----------------------------------------------------------------

_SQL_BACKENDS = ("postgres", "supabase")


class _LoggedStore:
    """Forwards every JobStore method to the real store and logs one line per call.

    On the Postgres and Supabase stores each method is one `public.videogen_<method>`
    SQL function (storage/sqlfunc.py), so the line names that function.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("_") or name == "close" or not callable(value):
            return value
        backend = str(getattr(self._inner, "backend_name", "store"))
        call = f"videogen_{name}" if backend in _SQL_BACKENDS else name
        return _logged(value, backend, call)


def _logged(fn: Callable[..., _T], backend: str, call: str) -> Callable[..., _T]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            status = str(getattr(exc, "code", None) or type(exc).__name__)
            log_call(event="store", backend=backend, call=call, status=status, ms=_ms(started))
            raise
        log_call(event="store", backend=backend, call=call, status="ok", ms=_ms(started))
        return result

    return wrapper


def wrap_store(store: _T) -> _T:
    """The store itself when the log is off; otherwise a proxy that logs each call."""
    if not enabled():
        return store
    return _LoggedStore(store)  # type: ignore[return-value]
