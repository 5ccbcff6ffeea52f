"""One line per request on stderr: what an operator greps for, and never a token.

    2026-11-25T19:50:01Z POST /functions/v1/generate-video 200 14ms user=… job=… key=…

Only the method, the path without its query string, the status, the time taken and
three values the endpoints note (user from the token, job id, Idempotency-Key) are
written; headers never are, so neither is the Authorization header.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def line(method: str, path: str, status: int, elapsed_ms: float, notes: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fields = " ".join(f"{name}={_clean(notes.get(name))}" for name in ("user", "job", "key"))
    extra = f" error={notes['error']}" if notes.get("error") else ""
    return f"{stamp} {method} {_clean(path)} {status} {elapsed_ms:.0f}ms {fields}{extra}"


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
