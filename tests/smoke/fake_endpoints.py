"""A small, in-memory implementation of the app's endpoints (README "For the iOS team:
videogen serve"), with switches that break it the ways a real implementation can break.

It is what `videogen smoke --endpoint` must tell apart: the correct fake passes, each
broken one fails the named check. Served for real over HTTP on 127.0.0.1 (the standard
library's ThreadingHTTPServer in a thread), so smoke goes through its real HTTP client.
Tokens are HS256 JWTs checked with PyJWT, as `videogen serve` checks them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

SECRET = "fake-endpoint-secret-for-tests-only-0123456789"
MODEL = {
    "id": "7a000000-0000-4000-a000-000000000001",
    "slug": "fake-t2v",
    "name": "Fake text-to-video",
    "credits_per_second": 1,
    "requires_image": False,
    "settings": {"duration": {"type": "integer", "allowed": [4, 8], "default": 4}},
}
STARTING_CREDITS = 100  # what each funded user starts with; any other user has none
POLLS_TO_FINISH = 2


@dataclass
class Breakage:
    new_job_on_replay: bool = False
    no_replay_header: bool = False
    no_refund: bool = False
    never_completes: bool = False
    fail_word_ignored: bool = False  # the provider cannot be told to fail
    replay_shows_current_state: bool = False  # a replay answers the job as it is now
    replay_headers: tuple[str, ...] | None = None  # the replay headers sent (None: both)
    crash_on_replay: bool = False  # the handler dies: the connection closes unanswered
    any_token: bool = False  # signatures not checked: any JWT's `sub` is the user
    charges_without_credits: bool = False  # no credit check: a balance may go negative
    status_word: str | None = None  # every answer's status spelled this way (not ours)


@dataclass
class FakeBackend:
    breakage: Breakage = field(default_factory=Breakage)
    provider: str | None = "simulator"  # what /healthz says; None: no /healthz at all
    funded_users: set[str] = field(default_factory=set)
    balances: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def balance(self, user: str) -> int:
        default = STARTING_CREDITS if user in self.funded_users else 0
        return self.balances.setdefault(user, default)

    # --- the endpoints -----------------------------------------------------------------
    def generate(self, user: str, key: str | None, body: Any) -> tuple[int, Any, bool]:
        if not key:
            return 400, _error("idempotency_key_missing"), False
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return 400, _error("invalid_input"), False
        if body.get("model_id") not in (MODEL["slug"], MODEL["id"]):
            return 404, _error("model_not_found"), False
        duration = (body.get("settings") or {}).get("duration", 4)
        if duration not in (4, 8):
            return 400, _error("invalid_input"), False
        fingerprint = json.dumps([user, body], sort_keys=True)
        with self.lock:
            known = self.keys.get(key)
            if known is not None and not self.breakage.new_job_on_replay:
                if known[0] != fingerprint:
                    return 422, _error("idempotency_key_reused"), False
                if self.breakage.crash_on_replay:
                    raise RuntimeError("the replay path is broken")
                if self.breakage.replay_shows_current_state:
                    return 200, {**known[1], "status": "processing", "queue_position": 0}, True
                return 200, known[1], True
            cost = duration
            if self.balance(user) < cost and not self.breakage.charges_without_credits:
                return 402, _error("insufficient_credits"), False
            self.balances[user] -= cost
            job_id = str(uuid.uuid4())
            self.jobs[job_id] = {
                "job_id": job_id,
                "user_id": user,
                "status": "pending",
                "prompt": body["prompt"],
                "video_url": None,
                "thumbnail_url": None,
                "error": None,
                "queue_position": 0,
                "credits_used": cost,
                "refunded_credits": 0,
            }
            answer = {"job_id": job_id, "status": "pending", "credits_used": cost}
            if self.breakage.status_word is not None:
                answer["status"] = self.breakage.status_word
            self.keys[key] = (fingerprint, answer)
            return 200, answer, False

    def status(self, user: str, job_id: str) -> tuple[int, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job["user_id"] != user:
                return 404, _error("job_not_found")
            self.polls[job_id] = polls = self.polls.get(job_id, 0) + 1
            if job["status"] in ("pending", "processing") and not self.breakage.never_completes:
                if polls >= POLLS_TO_FINISH:
                    fails = "sim:fail" in job["prompt"] and not self.breakage.fail_word_ignored
                    if fails:
                        job["status"], job["error"] = "failed", "Runner disconnected"
                        if not self.breakage.no_refund:
                            job["refunded_credits"] = job["credits_used"]
                            self.balances[user] += job["credits_used"]
                    else:
                        job["status"] = "completed"
                        job["video_url"] = f"https://videos.fake.invalid/{job_id}.mp4"
                else:
                    job["status"] = "processing"
                job["queue_position"] = None
            shown = {k: v for k, v in job.items() if k not in ("user_id", "prompt")}
            if self.breakage.status_word is not None:
                shown["status"] = self.breakage.status_word
            return 200, shown


def _error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": code.replace("_", " "), "hint": None}}


def _handler(backend: FakeBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows what matters

        def _send(self, status: int, body: Any, replayed: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if replayed and not backend.breakage.no_replay_header:
                sent = backend.breakage.replay_headers
                for name in ("X-Idempotent-Replay", "Idempotent-Replayed"):
                    if sent is None or name in sent:
                        self.send_header(name, "true")
            self.end_headers()
            self.wfile.write(data)

        def _user(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            try:
                claims = jwt.decode(
                    auth.removeprefix("Bearer "),
                    SECRET,
                    ["HS256"],
                    audience="authenticated",
                    options={"verify_signature": not backend.breakage.any_token},
                )
            except jwt.InvalidTokenError:
                self._send(401, _error("invalid_token"))
                return None
            return str(claims["sub"])

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                if backend.provider is None:
                    self._send(404, _error("not_found"))
                else:
                    body = {"status": "ok", "backend": "fake", "provider": backend.provider}
                    self._send(200, body)
                return
            user = self._user()
            if user is None:
                return
            if url.path == "/functions/v1/models":
                self._send(200, {"models": [MODEL]})
            elif url.path == "/functions/v1/get-video-status":
                job_id = parse_qs(url.query).get("job_id", [""])[0]
                self._send(*backend.status(user, job_id))
            else:
                self._send(404, _error("not_found"))

        def do_POST(self) -> None:
            user = self._user()
            if user is None:
                return
            if urlsplit(self.path).path != "/functions/v1/generate-video":
                self._send(404, _error("not_found"))
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, _error("invalid_json"))
                return
            self._send(*backend.generate(user, self.headers.get("Idempotency-Key"), body))

    return Handler


@contextmanager
def serving(backend: FakeBackend) -> Iterator[str]:
    """Serve the fake on a free port of 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(backend))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def token(user_id: str, secret: str = SECRET) -> str:
    claims = {"sub": user_id, "aud": "authenticated", "role": "authenticated", "exp": 2**31}
    return jwt.encode(claims, secret, algorithm="HS256")
