"""The outer layer every request crosses: CORS, the bearer token, the log line, and the
last-resort 500.

A plain ASGI middleware rather than Starlette's CORSMiddleware: Supabase answers every
OPTIONS with 204 and the allow headers (the app's preflight), and Starlette's answers a
preflight 200 and passes other OPTIONS requests to the routes (405). The token is
checked here, before the body is parsed, so a request without a valid token gets 401
whatever else is wrong with it, as at Supabase's gateway.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from videogen_cli.errors import ErrorCode
from videogen_cli.http import access_log
from videogen_cli.http.errors import Answer, ApiError, internal_error
from videogen_cli.http.tokens import InvalidToken, TokenVerifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOW_HEADERS = "authorization, x-client-info, apikey, content-type, idempotency-key"
ALLOW_METHODS = "GET, POST, OPTIONS"
# Browsers may read these on a cross-origin answer (the replay markers).
EXPOSE_HEADERS = "X-Idempotent-Replay, Idempotent-Replayed, Retry-After"
EVERY_ANSWER = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
]
PREFLIGHT = [
    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
    (b"access-control-max-age", b"86400"),
]


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        protected: frozenset[str],
        log: Callable[[str], None] = access_log.write,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.protected = protected  # paths that need a token
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        notes: dict[str, Any] = scope.setdefault("state", {})
        notes["key"] = _header(scope, b"idempotency-key")  # for the log line, even on a 400
        sent = {"status": 0}

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), *EVERY_ANSWER]
            await send(message)

        try:
            if scope["method"] == "OPTIONS":
                await _answer(send_with_cors, 204, b"", PREFLIGHT)
            elif scope["path"] in self.protected and not self._authorize(scope, notes):
                await _answer_error(send_with_cors, notes["auth_error"])
            else:
                await self.app(_as_json(scope), receive, send_with_cors)
        except Exception as exc:
            notes["error"] = type(exc).__name__
            if os.environ.get("VIDEOGEN_DEBUG", "") not in ("", "0"):
                traceback.print_exc(file=sys.stderr)
            if sent["status"]:
                raise  # the answer is under way: only closing the connection is left
            await _answer_error(send_with_cors, internal_error(exc))
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.log(
                access_log.line(
                    scope["method"],
                    scope["path"],
                    sent["status"],
                    elapsed,
                    notes,
                    secrets=_credentials(scope),
                )
            )

    def _authorize(self, scope: Scope, notes: dict[str, Any]) -> bool:
        token = _bearer(scope)
        try:
            if token is None:
                raise InvalidToken("missing Authorization: Bearer <token>")
            notes["user"] = self.verifier.verify(token).user_id
            return True
        except InvalidToken as exc:
            notes["auth_error"] = ApiError(
                401,
                ErrorCode.INVALID_TOKEN,
                str(exc),
                "send Authorization: Bearer <user token> (a sandbox token: videogen token)",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return False


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _as_json(scope: Scope) -> Scope:
    """A POST body is read as JSON whatever its Content-Type says, as an Edge Function's
    `await req.json()` reads it: `curl -d '{…}'` (form-encoded by default) gets the same
    answer as with `-H 'Content-Type: application/json'`, not a puzzling 400."""
    if scope["method"] != "POST":
        return scope
    headers = [(n, v) for n, v in scope.get("headers", []) if n != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


def _credentials(scope: Scope) -> list[str]:
    """What the request sent as credentials: never to be written to the log."""
    found = []
    for name in (b"authorization", b"apikey"):
        value = (_header(scope, name) or "").strip()
        _, _, rest = value.partition(" ")
        found += [value, rest.strip()] if rest.strip() else [value]
    return [v for v in found if v]


def _bearer(scope: Scope) -> str | None:
    scheme, _, token = (_header(scope, b"authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer_error(send: Send, error: ApiError) -> None:
    await _answer(send, *encoded(error.answer))


def encoded(answer: Answer) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    content = answer.content()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in answer.headers.items()),
    ]
    return answer.status, content, headers
