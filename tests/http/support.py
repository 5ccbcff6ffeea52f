"""Calling the app the way clients do: through httpx, in-process (ASGI) or over TCP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from videogen_cli.bootstrap import open_store
from videogen_cli.config import load_settings
from videogen_cli.domain import LedgerEntry
from videogen_cli.http.tokens import load_secret, mint

FN = "/functions/v1"
# Exactly what supabase-swift's FunctionsClient sends (besides the body).
SWIFT_HEADERS = {
    "Apikey": "sb_publishable_local-anon-key",
    "X-Client-Info": "functions-swift/2.30.0",
    "Content-Type": "application/json",
}


class Api:
    """The app through httpx's ASGI transport: a real HTTP request, no socket."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    def request(
        self, method: str, path: str, *, token: str | None = None, auth: bool = True, **kw: Any
    ) -> httpx.Response:
        return asyncio.run(self._request(method, path, token=token, auth=auth, **kw))

    def many(self, calls: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
        """Send the requests at once (concurrently) and return the answers in order."""

        async def go() -> list[httpx.Response]:
            return list(await asyncio.gather(*(self._request(m, p, **kw) for m, p, kw in calls)))

        return asyncio.run(go())

    async def _request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if auth:
            sent.setdefault("Authorization", f"Bearer {token or self.token}")
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.request(method, path, headers=sent, **kw)

    def generate(
        self, key: str | None, body: dict[str, Any], *, token: str | None = None
    ) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        return self.request("POST", f"{FN}/generate-video", json=body, headers=headers, token=token)

    def status(self, job_id: str, *, token: str | None = None) -> httpx.Response:
        return self.request("GET", f"{FN}/get-video-status", params={"job_id": job_id}, token=token)


def token_for(user_id: str, ttl: int = 600) -> str:
    """A user token signed with this sandbox's secret."""
    return mint(load_secret(load_settings()), user_id, ttl)


def veo(prompt: str = "a paper boat", **settings: Any) -> dict[str, Any]:
    return {"model_id": "veo3.1", "prompt": prompt, "settings": {"duration": "4s", **settings}}


def new_key() -> str:
    return str(uuid.uuid4())


def balance(user_id: str) -> int | None:
    store = open_store(load_settings())
    try:
        return store.get_balance(user_id)
    finally:
        store.close()


def ledger(user_id: str) -> list[LedgerEntry]:
    """The user's ledger rows, oldest first, read from the store."""
    store = open_store(load_settings())
    try:
        return list(reversed(store.list_ledger(user_id, limit=500)))
    finally:
        store.close()


def jobs_of(user_id: str) -> list[str]:
    store = open_store(load_settings())
    try:
        return [j.job_id for j in store.list_jobs(user_id, limit=500)]
    finally:
        store.close()


def grant(user_id: str, credits: int) -> None:
    store = open_store(load_settings())
    try:
        store.grant_credits(user_id, credits, "test", "tests")
    finally:
        store.close()


# --- a real `videogen serve` process ----------------------------------------------------------
@dataclass
class Server:
    proc: subprocess.Popen[str]
    base_url: str = ""
    lines: list[str] = field(default_factory=list)

    def stderr(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


@contextmanager
def serve_process() -> Iterator[Server]:
    """`videogen serve --port 0` with this process's environment, until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "videogen_cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    srv = Server(proc)
    listening = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            srv.lines.append(line)
            found = re.search(r"listening on (http://\S+) ", line)
            if found:
                srv.base_url = found.group(1)
                listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert listening.wait(60), srv.stderr()
    try:
        yield srv
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        reader.join(10)


def videogen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videogen_cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )


def token() -> str:
    out = videogen("token")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
