"""fal's queue API on a sync httpx client (reference/fal-queue-api.md).

Retry policy, and why it differs per call:

- ``submit`` creates a billable job and fal documents no idempotency key, so a POST is
  retried only when fal cannot have created a job: the connection was never made
  (``ConnectError``/``ConnectTimeout``/``PoolTimeout``), HTTP 429, or a 502/503/504 from
  the ingress (no ``x-fal-request-id`` header, so the request never reached the queue).
  A read timeout or a 5xx without a request id has an unknown outcome and is reported as
  such (``provider_outcome_unknown``), never retried.
- A 5xx that DOES carry ``x-fal-request-id`` is answered as a submission of that request
  id (``Submission.warning`` says what fal answered), never retried. Why: fal named the
  request, so it may be queued or running; failing and refunding the job at once would
  leave a video we pay for and nobody follows. Recorded under that id, the job is
  followed by `status`/`watch`/`reconcile` like any other: fal either reports the request
  (and its own error, which fails and refunds the job), or keeps answering "not found",
  and the core's not-found rule (`JobService.refresh`, NOT_FOUND_LIMIT consecutive
  answers) fails and refunds it then. fal does not bill 5xx failures
  (https://fal.ai/docs/documentation/model-apis/inference/reliability).
- ``status``, ``result`` and ``cancel`` change nothing that a repeat could double, so they
  are retried on transport errors, timeouts, 429 and 5xx.

Both use 3 attempts with 0.5 s then 1 s between them, except that a 429 or 503 with a
``Retry-After`` header (seconds or an HTTP-date) waits what it says, at most
``MAX_RETRY_AFTER_SECONDS``. ``deadline`` (a monotonic time) clips every request's timeout,
and no request or wait outlives it: a wait that would pass it ends the call at once.

ProviderError codes raised here: ``provider_unavailable`` (retries exhausted, unusable
network), ``provider_auth`` (401/403, bad key), ``provider_timeout`` (``deadline``
reached), ``provider_outcome_unknown`` (submit may or may not have created a job),
``provider_not_found`` (status or result for a request id fal does not know: one such
answer is never final, see `JobService.refresh`),
``provider_protocol_error`` (an answer that does not follow the documented protocol).
``RefusedError(code="provider_rejected")`` is a definitive 4xx refusal at submit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

import videogen_cli
from videogen_cli import debuglog
from videogen_cli.config import DEFAULT_FAL_QUEUE_URL
from videogen_cli.domain import (
    ProviderHandle,
    ProviderIdentity,
    ProviderResult,
    ProviderState,
    ProviderStatus,
    Submission,
)
from videogen_cli.errors import ErrorCode, ProviderError, RefusedError, UsageError

__all__ = [
    "APP_NAMESPACES",
    "FalQueueProvider",
    "app_base",
    "describe_error",
    "fal_origin",
    "request_urls",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

# Namespaced apps keep three parts in their app id (fal_client APP_NAMESPACES).
APP_NAMESPACES = ("workflows", "comfy")
MAX_ATTEMPTS = 3
# At most this many requests in flight to fal from one process (a watch of many jobs
# shares one client; the pool makes the others wait for a free connection).
MAX_CONNECTIONS = 32
# fal sends a comment line every 15 s on a status stream
# (https://fal.ai/docs/inference-api/queue/status-stream); a stream quiet for longer
# than this is treated as broken and the caller falls back to polling.
STREAM_KEEPALIVE_SECONDS = 15.0
STREAM_QUIET_SECONDS = STREAM_KEEPALIVE_SECONDS + 5.0
# How far one stream read may outlast the watch deadline before the stream is reopened
# with a read timeout clipped to what is left.
STREAM_DEADLINE_SLACK = 1.0
BACKOFF_SECONDS = (0.5, 1.0)  # before attempt 2 and attempt 3
_INGRESS_STATUSES = frozenset({502, 503, 504})
# A server's Retry-After is honoured up to this; longer waits belong to the caller's own
# backoff (watch, reconcile), not to one HTTP call.
MAX_RETRY_AFTER_SECONDS = 60.0
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_MAX_LINE = 300  # describe_error output stays one readable line
_NUMERIC_APP_ID = re.compile(r"^([0-9]+)-([a-zA-Z0-9-]+)$")
_AUTH_HINT = "check FAL_KEY: it must be a valid fal API key with access to the queue API"


# --- pure helpers ----------------------------------------------------------------------


def app_base(endpoint_id: str) -> str:
    """The app id that status/result/cancel URLs use: the endpoint id without sub-path.

    ``fal-ai/sora-2/image-to-video`` → ``fal-ai/sora-2``; ``workflows/me/flow/x`` →
    ``workflows/me/flow``; a legacy ``123-name`` id → ``123/name`` (fal_client's rule,
    tests/test_simulator.py pins it). Raises ValueError for an id that has no owner/alias.
    """
    cleaned = endpoint_id.strip().strip("/")
    parts = cleaned.split("/")
    if len(parts) == 1:
        match = _NUMERIC_APP_ID.match(cleaned)
        if not match:
            raise ValueError(f"invalid fal endpoint id {endpoint_id!r}: expected owner/alias")
        return f"{match.group(1)}/{match.group(2)}"
    keep = 3 if parts[0] in APP_NAMESPACES else 2
    if len(parts) < keep or not all(parts[:keep]):
        raise ValueError(f"invalid fal endpoint id {endpoint_id!r}: expected owner/alias")
    return "/".join(parts[:keep])


def request_urls(base_url: str, endpoint_id: str, request_id: str) -> tuple[str, str, str]:
    """(status_url, response_url, cancel_url) built as fal's clients build them (app_base)."""
    base = f"{base_url.rstrip('/')}/{app_base(endpoint_id)}/requests/{request_id}"
    return f"{base}/status", base, f"{base}/cancel"


def describe_error(status_code: int, headers: Mapping[str, str], body: bytes) -> str:
    """One readable line for a fal error answer
    (https://fal.ai/docs/documentation/model-apis/request-errors).

    Handles the flat ``{"detail": str, "error_type": str}`` shape (also read from the
    ``X-Fal-Error-Type`` header), the ``{"detail": [{"loc", "msg", "type"}, ...]}`` list
    (``prompt: msg (type)``, leading ``body`` dropped, items joined by ``; ``), a plain
    string ``detail``, and anything else (status, reason phrase, truncated text).
    """
    header_type = _header(headers, "x-fal-error-type")
    payload = _json_or_none(body)
    line: str | None = None
    if isinstance(payload, dict):
        detail = payload.get("detail")
        error_type = payload.get("error_type")
        kind = error_type if isinstance(error_type, str) and error_type else header_type
        if isinstance(detail, list) and detail:
            line = "; ".join(_describe_item(item) for item in detail)
        elif isinstance(detail, str) and detail.strip():
            line = f"{detail} ({kind})" if kind else detail
        elif isinstance(payload.get("message"), str) and payload["message"].strip():
            line = f"{payload['message']} ({kind})" if kind else str(payload["message"])
        elif isinstance(payload.get("error"), str) and payload["error"].strip():
            line = f"{payload['error']} ({kind})" if kind else str(payload["error"])
        elif detail is not None:
            line = json.dumps(detail, separators=(",", ":"), ensure_ascii=False)
    if line is None:
        line = _describe_raw(status_code, body)
        if header_type:
            line = f"{line} ({header_type})"
    return _one_line(line)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (RFC 9110 §10.2.3), or None.

    Accepts delay-seconds (a fraction too) and an HTTP-date (relative to ``now``, wall
    clock); a date in the past is 0. Capped at ``MAX_RETRY_AFTER_SECONDS``. Anything else
    (empty, negative, not finite, unparsable) is ignored: None.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None  # an HTTP-date is always GMT; a zone-less date is not one
        seconds = max(0.0, when.timestamp() - now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def _describe_item(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    msg = str(item.get("msg") or "invalid input")
    kind = item.get("type")
    path = _field_path(item.get("loc"))
    text = f"{path}: {msg}" if path else msg
    return f"{text} ({kind})" if isinstance(kind, str) and kind else text


def _field_path(loc: object) -> str:
    """``["body", "images", 0, "url"]`` → ``images[0].url`` (genmedia-cli's display)."""
    if not isinstance(loc, list):
        return ""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _describe_raw(status_code: int, body: bytes) -> str:
    reason = httpx.codes.get_reason_phrase(status_code)
    head = f"HTTP {status_code} {reason}".rstrip()
    text = body[:2000].decode("utf-8", errors="replace")
    # Gateway error pages are HTML; the tag-free text is what a person wants to read.
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{head}: {text}" if text else head


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 3] + "..."


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not isinstance(headers, httpx.Headers):
        # Plain dicts are case-sensitive; HTTP header names are not.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return (value.strip() or None) if value is not None else None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


# --- the adapter -----------------------------------------------------------------------


class _Secret:
    """Holds the key so that no repr, traceback local dump or f-string shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class FalQueueProvider:
    """``VideoProvider`` over fal's queue protocol (the real API or the simulator)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_FAL_QUEUE_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        name: str = "fal",
        max_connections: int = MAX_CONNECTIONS,
        identity: Callable[[], ProviderIdentity] | None = None,
    ) -> None:
        key = api_key.strip()
        # A key with control or non-ASCII characters would make the HTTP layer raise an
        # error that quotes the header value, i.e. the key itself; refuse it up front.
        if not key or not key.isascii() or not key.isprintable():
            raise ProviderError(
                "the fal API key is empty or contains characters a key cannot have",
                code=ErrorCode.PROVIDER_AUTH,
                hint=_AUTH_HINT,
            )
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.name = name
        self.deadline: float | None = None
        self.base_url = base_url.rstrip("/")
        self._key = _Secret(key)
        self._timeout = timeout
        self._sleep = sleep
        self._monotonic = monotonic
        self._now = now
        self._origin = _origin(self.base_url)
        # Resolved on first use: the simulator's identity lives in its database.
        self._identity_source = identity or (lambda: ProviderIdentity("fal", fal_origin(base_url)))
        self._identity: ProviderIdentity | None = None
        self._client = httpx.Client(
            transport=transport,
            headers={
                "Authorization": f"Key {key}",
                "User-Agent": f"videogen-cli/{videogen_cli.__version__}",
                "Accept": "application/json",
            },
            # Reads follow redirects as fal_client does; httpx drops Authorization when
            # a redirect leaves the origin, so the key cannot follow it elsewhere.
            follow_redirects=True,
            event_hooks=debuglog.http_event_hooks(),  # the --log-file / VIDEOGEN_LOG lines
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def __repr__(self) -> str:
        return f"FalQueueProvider(name={self.name!r}, base_url={self.base_url!r})"

    @property
    def identity(self) -> ProviderIdentity:
        """Who takes the jobs submitted here (README "Each job stays with its provider")."""
        if self._identity is None:
            self._identity = self._identity_source()
        return self._identity

    # --- VideoProvider -------------------------------------------------------------------

    def submit(self, endpoint_id: str, arguments: dict[str, object]) -> Submission:
        """POST the input; retried only where fal cannot have created a job.

        Raises RefusedError("provider_rejected") on a definitive 4xx, ProviderError
        ("provider_auth" | "provider_unavailable" | "provider_timeout" |
        "provider_protocol_error" | "provider_outcome_unknown") otherwise. Only
        "provider_outcome_unknown" means fal may hold a job for this request.
        """
        url = f"{self.base_url}/{endpoint_id.strip().strip('/')}"
        last = ""
        wait: float | None = None
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self._backoff(attempt, "submit", last, wait)
            wait = None
            try:
                response = self._send("POST", url, json_body=arguments)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                last = self._transport_text(exc)  # nothing reached fal: safe to repeat
                log.debug("fal submit attempt %d not sent: %s", attempt + 1, last)
                continue
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                self._unusable(exc)
            except httpx.TransportError as exc:
                self._outcome_unknown(endpoint_id, self._transport_text(exc), exc)
            code = response.status_code
            if 200 <= code < 300:
                return self._parse_submission(response)
            text = self._describe(response)
            if code in (401, 403):
                self._auth_failed(code, text)
            named = _header(response.headers, "x-fal-request-id")
            retryable = code == 429 or (code in _INGRESS_STATUSES and named is None)
            if retryable:
                last = f"HTTP {code}: {text}"
                wait = self._retry_after(response)
                log.debug("fal submit attempt %d refused for now: %s", attempt + 1, last)
                continue
            if code >= 500 and named is not None:
                # fal named the request it created: follow it rather than refund blindly
                # (the reasons are in this module's docstring).
                return self._named_submission(endpoint_id, named, f"HTTP {code}: {text}")
            if 300 <= code < 400:
                # Not followed for a POST (httpx would turn a 302 into a GET): the answer
                # is a redirect, so nothing was created at this URL.
                raise ProviderError(
                    f"fal answered the submit with HTTP {code} (redirect to "
                    f"{response.headers.get('location', 'nowhere')}); no job was created",
                    code=ErrorCode.PROVIDER_PROTOCOL_ERROR,
                    hint="check VIDEOGEN_FAL_QUEUE_URL",
                )
            if 400 <= code < 500:
                raise RefusedError(
                    self._scrub(text),
                    code=ErrorCode.PROVIDER_REJECTED,
                    hint=f"fal refused the request (HTTP {code}); no job was created on fal",
                )
            self._outcome_unknown(endpoint_id, f"HTTP {code}: {text}", None)
        raise ProviderError(
            self._scrub(f"fal did not accept the request after {MAX_ATTEMPTS} attempts: {last}"),
            code=ErrorCode.PROVIDER_UNAVAILABLE,
            hint="fal is unreachable or overloaded; no job was created, try again later",
        )

    def status(self, handle: ProviderHandle) -> ProviderStatus:
        """GET the status (``logs=0``). COMPLETED with error/error_type sets ``error``."""
        status_url, _, _ = self._urls(handle)
        response = self._read("GET", status_url, "status", params={"logs": "0"})
        if response.status_code == 404:
            raise ProviderError(
                f"fal does not know request {handle.request_id} ({self._describe(response)})",
                code=ErrorCode.PROVIDER_NOT_FOUND,
                hint="check the stored request id and endpoint; fal may have expired it",
            )
        if not 200 <= response.status_code < 300:
            self._protocol_error("status", response)
        body = _json_or_none(response.content)
        if not isinstance(body, dict):
            self._protocol_error("status", response)
        raw_state = body.get("status")
        try:
            state = ProviderState(str(raw_state))
        except ValueError:
            # fal has exactly three states
            # (https://fal.ai/docs/documentation/model-apis/inference/queue);
            # FAILED/CANCELLED are third-party myths.
            raise ProviderError(
                f"fal reported an unknown status {raw_state!r} for request {handle.request_id}",
                code=ErrorCode.PROVIDER_PROTOCOL_ERROR,
            ) from None
        if state is ProviderState.IN_QUEUE:
            return ProviderStatus(
                state=state, queue_position=_int_or_none(body.get("queue_position"))
            )
        if state is ProviderState.COMPLETED:
            error = _text_or_none(body.get("error"))
            error_type = _text_or_none(body.get("error_type"))
            if error or error_type:
                return ProviderStatus(state=state, error=error or error_type, error_type=error_type)
        return ProviderStatus(state=state)

    def result(self, handle: ProviderHandle) -> ProviderResult:
        """GET the result: a video, or the job's own error (a 4xx other than 408/429).

        Timeouts, 408, 429 and 5xx that outlive the retries raise ProviderError
        (transient); 401/403 raise ProviderError("provider_auth"): a bad key is not the
        job's fault.
        """
        _, response_url, _ = self._urls(handle)
        response = self._read("GET", response_url, "result")
        code = response.status_code
        if 200 <= code < 300:
            body = _json_or_none(response.content)
            video = body.get("video") if isinstance(body, dict) else None
            url = video.get("url") if isinstance(video, dict) else None
            if isinstance(url, str) and url:
                return ProviderResult(video_url=url)
            keys = ", ".join(sorted(body)) if isinstance(body, dict) else "not a JSON object"
            return ProviderResult(error=f"fal returned no video (response keys: {keys})")
        if code == 404:
            # Like status: an unknown request is never final from one answer.
            raise ProviderError(
                f"fal does not know request {handle.request_id} ({self._describe(response)})",
                code=ErrorCode.PROVIDER_NOT_FOUND,
                hint="check the stored request id and endpoint; fal may have expired it",
            )
        if 400 <= code < 500:
            return ProviderResult(error=self._describe(response))
        self._protocol_error("result", response)

    def cancel(self, handle: ProviderHandle) -> str:
        """PUT cancel: CANCELLATION_REQUESTED, OK, ALREADY_COMPLETED or NOT_FOUND."""
        _, _, cancel_url = self._urls(handle)
        response = self._read("PUT", cancel_url, "cancel")
        code = response.status_code
        body = _json_or_none(response.content)
        word = body.get("status") if isinstance(body, dict) else None
        if code == 202:
            return "CANCELLATION_REQUESTED"
        if 200 <= code < 300:
            return word if isinstance(word, str) and word else "OK"
        if code == 400:
            return "ALREADY_COMPLETED"
        if code == 404:
            return "NOT_FOUND"
        self._protocol_error("cancel", response)

    def stream_status(self, handle: ProviderHandle) -> Iterator[ProviderStatus]:
        """Follow the request over fal's status stream (SSE, https://fal.ai/docs/inference-api/queue/status-stream).

        Yields one ``ProviderStatus`` per ``data:`` event and returns after COMPLETED.
        One attempt, no retries: every failure is the caller's cue to poll instead.
        Raises ProviderError with ``provider_stream_refused`` (any non-2xx or non-SSE
        answer at open), ``provider_stream_broken`` (transport error, unreadable event,
        or the stream ended before COMPLETED), ``provider_stream_quiet`` (nothing, not
        even a keep-alive, for ``STREAM_QUIET_SECONDS``), ``provider_timeout`` (the
        deadline came first) or ``provider_auth`` (401/403).

        Each read may wait at most the quiet limit, clipped to the deadline at open.
        When a line arrives and that read timeout would now outlast the deadline by more
        than ``STREAM_DEADLINE_SLACK``, the stream is reopened with the timeout clipped
        to what is left (one more request, only in the last 20 s of a watch), so no read
        outlives the deadline by more than that slack.
        """
        status_url, _, _ = self._urls(handle)
        url = f"{status_url.rstrip('/')}/stream"
        while True:
            read_limit = STREAM_QUIET_SECONDS
            clipped = False
            if self.deadline is not None:
                left = self.deadline - self._monotonic()
                if left <= 0:
                    raise ProviderError(
                        f"deadline reached before the fal GET {_path(url)} was sent",
                        code=ErrorCode.PROVIDER_TIMEOUT,
                    )
                if left < read_limit:
                    read_limit, clipped = left, True
            reopen = yield from self._stream_once(url, handle.request_id, read_limit, clipped)
            if not reopen:
                return

    def _stream_once(
        self, url: str, request_id: str, read_limit: float, clipped: bool
    ) -> Generator[ProviderStatus, None, bool]:
        """One stream request; returns True when it should be reopened with a shorter
        read limit (the deadline came within the quiet limit)."""
        request = self._client.build_request(
            "GET",
            url,
            params={"logs": "0"},
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(read_limit, connect=min(10.0, read_limit)),
        )
        try:
            response = self._client.send(request, stream=True)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            debuglog.log_transport_error(exc)
            self._unusable(exc)
        except httpx.TransportError as exc:
            debuglog.log_transport_error(exc)
            raise ProviderError(
                f"fal status stream not opened: {self._transport_text(exc)}",
                code=ErrorCode.PROVIDER_STREAM_BROKEN,
            ) from None
        try:
            code = response.status_code
            if code in (401, 403):
                response.read()
                self._auth_failed(code, self._describe(response))
            kind = response.headers.get("content-type", "")
            if not 200 <= code < 300 or not kind.startswith("text/event-stream"):
                response.read()
                raise ProviderError(
                    f"fal refused the status stream (HTTP {code}): {self._describe(response)}",
                    code=ErrorCode.PROVIDER_STREAM_REFUSED,
                )
            data: list[str] = []
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif not line and data:  # a blank line ends the event
                    status = self._stream_event("\n".join(data), request_id)
                    data = []
                    if status.state is ProviderState.COMPLETED:
                        # fal closes the stream now (as @fal-ai/client, read to that
                        # end): the connection goes back to the pool and carries the
                        # result fetch, instead of being dropped and a new one opened
                        # while fal still counts the old one. Released before the
                        # caller fetches, so one caller never holds two connections.
                        with contextlib.suppress(httpx.TransportError):  # COMPLETED is known
                            for _ in lines:
                                pass
                        response.close()
                        yield status
                        return False
                    yield status
                # Anything else is a keep-alive comment (":") or a field we do not use.
                if self.deadline is not None:
                    left = self.deadline - self._monotonic()
                    if left <= 0:
                        raise ProviderError(
                            "deadline reached while following the fal status stream",
                            code=ErrorCode.PROVIDER_TIMEOUT,
                        )
                    if read_limit - left > STREAM_DEADLINE_SLACK:
                        return True  # reopen: the next read must not outlive the deadline
        except httpx.ReadTimeout:
            if clipped:
                raise ProviderError(
                    "deadline reached while following the fal status stream",
                    code=ErrorCode.PROVIDER_TIMEOUT,
                ) from None
            raise ProviderError(
                f"the fal status stream was silent for {STREAM_QUIET_SECONDS:g} s",
                code=ErrorCode.PROVIDER_STREAM_QUIET,
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                f"the fal status stream broke: {self._transport_text(exc)}",
                code=ErrorCode.PROVIDER_STREAM_BROKEN,
            ) from None
        finally:
            response.close()
        raise ProviderError(
            "the fal status stream ended before the request completed",
            code=ErrorCode.PROVIDER_STREAM_BROKEN,
        )

    def _stream_event(self, data: str, request_id: str) -> ProviderStatus:
        body = _json_or_none(data.encode())
        status = _status_from_body(body) if isinstance(body, dict) else None
        if status is None:
            raise ProviderError(
                self._scrub(
                    f"unreadable event on the fal status stream of {request_id}: {data[:120]!r}"
                ),
                code=ErrorCode.PROVIDER_STREAM_BROKEN,
            )
        return status

    def close(self) -> None:
        self._client.close()

    # --- HTTP plumbing -------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json_body: object = None,
    ) -> httpx.Response:
        limit = self._timeout
        if self.deadline is not None:
            left = self.deadline - self._monotonic()
            if left <= 0:
                raise ProviderError(
                    f"deadline reached before the fal {method} {_path(url)} was sent",
                    code=ErrorCode.PROVIDER_TIMEOUT,
                )
            limit = min(limit, left)
        try:
            return self._client.request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=httpx.Timeout(limit, connect=min(10.0, limit)),
                follow_redirects=method != "POST",
            )
        except httpx.TransportError as exc:
            debuglog.log_transport_error(exc)  # no response, so no response hook ran
            raise

    def _read(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A request that is safe to repeat: retried on transport errors, 408, 429, 5xx."""
        last = ""
        wait: float | None = None
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self._backoff(attempt, what, last, wait)
            wait = None
            try:
                response = self._send(method, url, params=params)
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                self._unusable(exc)
            except httpx.TransportError as exc:
                last = self._transport_text(exc)
                log.debug("fal %s attempt %d failed: %s", what, attempt + 1, last)
                continue
            code = response.status_code
            if code in (401, 403):
                self._auth_failed(code, self._describe(response))
            if code in (408, 429) or code >= 500:
                last = f"HTTP {code}: {self._describe(response)}"
                wait = self._retry_after(response)
                log.debug("fal %s attempt %d failed: %s", what, attempt + 1, last)
                continue
            return response
        raise ProviderError(
            self._scrub(f"fal {what} call failed after {MAX_ATTEMPTS} attempts: {last}"),
            code=ErrorCode.PROVIDER_UNAVAILABLE,
            hint="transient trouble at fal; the job keeps running there, ask again later",
        )

    def _backoff(self, attempt: int, what: str, last: str, retry_after: float | None) -> None:
        """Sleep before attempt ``attempt + 1``: what fal asked for, else our backoff."""
        if retry_after is not None:
            delay = retry_after
        else:
            delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
        if self.deadline is not None and self._monotonic() + delay >= self.deadline:
            asked = f" (fal asked to retry after {delay:g} s)" if retry_after is not None else ""
            raise ProviderError(
                self._scrub(f"deadline reached while retrying the fal {what} call{asked}: {last}"),
                code=ErrorCode.PROVIDER_TIMEOUT,
            )
        self._sleep(delay)

    def _retry_after(self, response: httpx.Response) -> float | None:
        """The wait a 429/503 asks for in ``Retry-After``; None for other answers."""
        if response.status_code not in _RETRY_AFTER_STATUSES:
            return None
        return retry_after_seconds(response.headers.get("retry-after"), self._now())

    def _urls(self, handle: ProviderHandle) -> tuple[str, str, str]:
        """The handle's URLs where present and on our origin, else derived (request_urls).

        URLs come from storage as much as from fal; sending the key to whatever host a
        stored row names would leak it, so only URLs on the configured origin are used.
        """
        try:
            derived = request_urls(self.base_url, handle.endpoint_id, handle.request_id)
        except ValueError as exc:
            raise UsageError(str(exc), code=ErrorCode.INVALID_ENDPOINT_ID) from None
        given = (handle.status_url, handle.response_url, handle.cancel_url)
        chosen = []
        for url, fallback in zip(given, derived, strict=True):
            if url and _origin(url) == self._origin:
                chosen.append(url)
            else:
                if url:
                    log.debug("ignoring fal URL on a foreign origin: %s", _origin(url))
                chosen.append(fallback)
        return chosen[0], chosen[1], chosen[2]

    def _named_submission(self, endpoint_id: str, request_id: str, answer: str) -> Submission:
        try:
            status_url, response_url, cancel_url = request_urls(
                self.base_url, endpoint_id, request_id
            )
        except ValueError as exc:
            raise UsageError(str(exc), code=ErrorCode.INVALID_ENDPOINT_ID) from None
        warning = self._scrub(
            f"fal answered the submit with {answer} but named request {request_id}; "
            "the job is followed under that id"
        )
        log.debug("%s", warning)
        return Submission(
            request_id=request_id,
            status_url=status_url,
            response_url=response_url,
            cancel_url=cancel_url,
            queue_position=None,
            warning=warning,
        )

    def _parse_submission(self, response: httpx.Response) -> Submission:
        body = _json_or_none(response.content)
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(request_id, str) or not request_id:
            # The header names the queue request too (fal's JS client reads it there).
            request_id = _header(response.headers, "x-fal-request-id")
            if isinstance(body, dict) and request_id:
                body = {**body, "request_id": request_id}
        if not isinstance(body, dict) or not isinstance(request_id, str) or not request_id:
            # fal took the request (2xx), so a job may be running that we cannot follow.
            raise ProviderError(
                f"fal accepted the request (HTTP {response.status_code}) but its answer has "
                "no request_id; the outcome is unknown",
                code=ErrorCode.PROVIDER_OUTCOME_UNKNOWN,
                hint="look for the request in the fal dashboard before submitting again",
            )
        return Submission(
            request_id=request_id,
            status_url=_text_or_none(body.get("status_url")),
            response_url=_text_or_none(body.get("response_url")),
            cancel_url=_text_or_none(body.get("cancel_url")),
            queue_position=_int_or_none(body.get("queue_position")),
        )

    # --- error helpers -------------------------------------------------------------------

    def _describe(self, response: httpx.Response) -> str:
        return self._scrub(describe_error(response.status_code, response.headers, response.content))

    def _scrub(self, text: str) -> str:
        """Defence in depth: no message may ever carry the key."""
        return text.replace(self._key.reveal(), "<redacted>")

    def _transport_text(self, exc: httpx.TransportError) -> str:
        detail = str(exc) or type(exc).__name__
        return self._scrub(f"{type(exc).__name__}: {detail}")

    def _auth_failed(self, code: int, text: str) -> NoReturn:
        raise ProviderError(
            self._scrub(f"fal refused the API key (HTTP {code}): {text}"),
            code=ErrorCode.PROVIDER_AUTH,
            hint=_AUTH_HINT,
        )

    def _unusable(self, exc: httpx.TransportError) -> NoReturn:
        raise ProviderError(
            f"cannot send requests to {self.base_url}: {self._transport_text(exc)}",
            code=ErrorCode.PROVIDER_UNAVAILABLE,
            hint="check VIDEOGEN_FAL_QUEUE_URL",
        ) from None

    def _outcome_unknown(
        self, endpoint_id: str, what: str, cause: BaseException | None
    ) -> NoReturn:
        raise ProviderError(
            self._scrub(
                f"submit to {endpoint_id} failed after the request was sent ({what}); "
                "the outcome is unknown: fal may have created the job"
            ),
            code=ErrorCode.PROVIDER_OUTCOME_UNKNOWN,
            hint="do not resubmit blindly: check the fal dashboard for the request first",
        ) from cause

    def _protocol_error(self, what: str, response: httpx.Response) -> NoReturn:
        text = self._describe(response)
        raise ProviderError(
            self._scrub(
                f"unexpected answer to the fal {what} call (HTTP {response.status_code}): {text}"
            ),
            code=ErrorCode.PROVIDER_PROTOCOL_ERROR,
        )


def fal_origin(base_url: str) -> str:
    """The queue base URL as a provider identity: scheme and host lower-cased, no slash."""
    parts = urlsplit(base_url.strip())
    host = parts.netloc.rpartition("@")[2].lower()  # never keep credentials in a URL
    return f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _path(url: str) -> str:
    return urlsplit(url).path


def _status_from_body(body: dict[str, Any]) -> ProviderStatus | None:
    """A status object (as polled, or as one stream event) → ProviderStatus; None when
    its ``status`` is not one of fal's three states."""
    try:
        state = ProviderState(str(body.get("status")))
    except ValueError:
        return None
    if state is ProviderState.IN_QUEUE:
        return ProviderStatus(state=state, queue_position=_int_or_none(body.get("queue_position")))
    if state is ProviderState.COMPLETED:
        error = _text_or_none(body.get("error"))
        error_type = _text_or_none(body.get("error_type"))
        if error or error_type:
            return ProviderStatus(state=state, error=error or error_type, error_type=error_type)
    return ProviderStatus(state=state)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
