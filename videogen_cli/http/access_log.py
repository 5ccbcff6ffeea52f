"""One line per request on stderr: what an operator greps for, and never a token.

    2026-11-25T19:50:01Z POST /functions/v1/generate-video 200 14ms user=… job=… key=…

Only the method, the path without its query string, the status, the time taken and
three values the endpoints note (user from the token, job id, Idempotency-Key) are
written; headers never are, so neither is the Authorization header. A client may still
put a token where a logged value goes (as the Idempotency-Key, in the path): any value
holding a piece of the request's own credentials, or anything shaped like a JWT, is
written as `[redacted]` (tests/http/test_serve_log_secrets.py).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

REDACTED = "[redacted]"
# A JWT's header is base64url JSON, so it starts "eyJ"; with a dot after it, it is a token
# (or the start of one) whoever sent it.
_JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.?")
# A logged value sharing this many characters with a credential of the request is hidden.
_WINDOW = 10


def line(
    method: str,
    path: str,
    status: int,
    elapsed_ms: float,
    notes: dict[str, Any],
    secrets: Iterable[str] = (),
) -> str:
    hide = _Redactor(secrets)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fields = " ".join(f"{name}={_clean(hide(notes.get(name)))}" for name in ("user", "job", "key"))
    extra = f" error={_clean(hide(notes['error']))}" if notes.get("error") else ""
    return f"{stamp} {method} {_clean(hide(path))} {status} {elapsed_ms:.0f}ms {fields}{extra}"


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.short: list[str] = []
        self.windows: set[str] = set()
        for secret in secrets:
            if len(secret) > _WINDOW:
                self.windows.update(
                    secret[i : i + _WINDOW] for i in range(len(secret) - _WINDOW + 1)
                )
            elif len(secret) >= 4:
                self.short.append(secret)

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        text = str(value)
        if _JWT_SHAPED.search(text) or any(s in text for s in self.short):
            return REDACTED
        if any(text[i : i + _WINDOW] in self.windows for i in range(len(text) - _WINDOW + 1)):
            return REDACTED
        return text


def write(text: str, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    out.write(text + "\n")
    out.flush()


def _clean(value: Any) -> str:
    """One token per field: no spaces or control characters from a client can forge lines."""
    if value is None or value == "":
        return "-"
    text = str(value)[:120]
    return "".join(c if c.isprintable() and not c.isspace() else "?" for c in text)
