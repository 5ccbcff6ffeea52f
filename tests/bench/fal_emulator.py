"""A fal queue emulator over real HTTP on 127.0.0.1, for `make bench` and by hand.

It speaks fal's queue protocol
(https://fal.ai/docs/documentation/model-apis/inference/queue) as the CLI sees it (submit,
status, the SSE status stream at ``{status_url}/stream``, result, cancel), with an
injected latency before every answer, and counts what a held-out measurement needs:
requests per kind, requests in flight and TCP connections open (with their peaks). Unlike
the simulator (an in-process transport, or `videogen`'s own server), it is a separate
threaded server the CLI reaches through
``VIDEOGEN_FAL_QUEUE_URL``, so real processes, sockets and connection pools are measured.

Each request completes at ``complete_at`` (wall time), by default ``run_seconds`` after
its submit; the bench moves it with ``complete_at()``. ``stream`` chooses how the stream
behaves: ``"ok"``, ``"404"`` / ``"405"`` (refused), ``"quiet"`` (one event, then nothing,
not even a keep-alive).

By hand: ``python tests/bench/fal_emulator.py [port] [latency_s] [run_s] [stream]``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

QUEUED_SECONDS = 1.0


@dataclass
class _Request:
    request_id: str
    app: str
    submitted_at: float
    complete_at: float


@dataclass
class Counts:
    requests: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    connections: int = 0
    peak_connections: int = 0
    opened: int = 0  # TCP connections accepted since the last reset

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class FalEmulator:
    def __init__(
        self,
        *,
        latency: float = 0.1,
        run_seconds: float = 7.0,
        stream: str = "ok",
        keepalive: float = 15.0,
        port: int = 0,
    ) -> None:
        self.latency = latency
        self.run_seconds = run_seconds
        self.stream = stream
        self.keepalive = keepalive
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.jobs: dict[str, _Request] = {}
        self.order: list[str] = []
        self.counts = Counts()
        self.stopping = False
        emulator = self

        class Handler(_Handler):
            emu = emulator

        self.server = _Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FalEmulator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self.lock:
            self.stopping = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def reset_counts(self) -> None:
        with self.lock:
            self.counts = Counts(connections=self.counts.connections, in_flight=0)

    def complete_at(self, request_ids: list[str], moments: list[float]) -> None:
        with self.lock:
            for rid, at in zip(request_ids, moments, strict=True):
                job = self.jobs[rid]
                job.complete_at = at
                job.submitted_at = min(job.submitted_at, at - QUEUED_SECONDS - 0.5)
            self.changed.notify_all()

    # --- state -----------------------------------------------------------------------

    def status_of(self, job: _Request, now: float) -> tuple[int, dict[str, Any]]:
        base = f"{self.url}/{job.app}/requests/{job.request_id}"
        body: dict[str, Any] = {"request_id": job.request_id, "response_url": base}
        if now >= job.complete_at:
            body.update(status="COMPLETED", logs=None, metrics={"inference_time": 1.0})
            return 200, body
        if now < job.submitted_at + QUEUED_SECONDS:
            body.update(status="IN_QUEUE", queue_position=0)
        else:
            body.update(status="IN_PROGRESS", logs=None)
        return 202, body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up (a closed stream, Ctrl-C) is not the emulator's fault


def _app_of(endpoint: str) -> str:
    return "/".join(endpoint.strip("/").split("/")[:2])


class _Handler(BaseHTTPRequestHandler):
    emu: FalEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.emu.lock:
            c = self.emu.counts
            c.connections += 1
            c.opened += 1
            c.peak_connections = max(c.peak_connections, c.connections)

    def finish(self) -> None:
        with self.emu.lock:
            self.emu.counts.connections -= 1
        super().finish()

    # --- plumbing --------------------------------------------------------------------

    def _enter(self, kind: str) -> None:
        with self.emu.lock:
            c = self.emu.counts
            c.requests[kind] = c.requests.get(kind, 0) + 1
            c.in_flight += 1
            c.peak_in_flight = max(c.peak_in_flight, c.in_flight)
        if self.emu.latency:
            time.sleep(self.emu.latency)

    def _leave(self) -> None:
        with self.emu.lock:
            self.emu.counts.in_flight -= 1

    def _json(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(
            "x-fal-request-id", str(body.get("request_id", "")) if isinstance(body, dict) else ""
        )
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _job(self, parts: list[str]) -> _Request | None:
        # {owner}/{alias}/requests/{id}[/...]
        if len(parts) < 4 or parts[2] != "requests":
            return None
        return self.emu.jobs.get(parts[3])

    # --- routes ----------------------------------------------------------------------

    def do_POST(self) -> None:
        self._body()
        self._enter("submit")
        try:
            endpoint = urlsplit(self.path).path.strip("/")
            rid = str(uuid.uuid4())
            app = _app_of(endpoint)
            now = time.time()
            job = _Request(rid, app, now, now + self.emu.run_seconds)
            with self.emu.lock:
                self.emu.jobs[rid] = job
                self.emu.order.append(rid)
            base = f"{self.emu.url}/{app}/requests/{rid}"
            self._json(
                200,
                {
                    "status": "IN_QUEUE",
                    "request_id": rid,
                    "response_url": base,
                    "status_url": f"{base}/status",
                    "cancel_url": f"{base}/cancel",
                    "queue_position": 0,
                },
            )
        finally:
            self._leave()

    def do_PUT(self) -> None:
        self._body()
        self._enter("cancel")
        try:
            job = self._job(urlsplit(self.path).path.strip("/").split("/"))
            if job is None:
                self._json(404, {"status": "NOT_FOUND"})
            elif time.time() >= job.complete_at:
                self._json(400, {"status": "ALREADY_COMPLETED"})
            else:
                self._json(202, {"status": "CANCELLATION_REQUESTED"})
        finally:
            self._leave()

    def do_GET(self) -> None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        tail = parts[4:]
        kind = {(): "result", ("response",): "result", ("status",): "status"}.get(
            tuple(tail), "stream" if tail == ["status", "stream"] else "other"
        )
        self._enter(kind)
        try:
            job = self._job(parts)
            if job is None or kind == "other":
                self._json(404, {"detail": "Request not found"})
            elif kind == "status":
                self._json(*self.emu.status_of(job, time.time()))
            elif kind == "result":
                if time.time() < job.complete_at:
                    self._json(400, {"detail": "Request is still in progress"})
                else:
                    self._json(
                        200, {"video": {"url": f"https://v3b.fal.media/{job.request_id}.mp4"}}
                    )
            elif self.emu.stream in ("404", "405"):
                self._json(int(self.emu.stream), {"detail": "Not Found"})
            else:
                self._stream(job)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self._leave()

    def _stream(self, job: _Request) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(text: str) -> None:
            data = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        emu = self.emu
        last: dict[str, Any] | None = None
        opened = last_sent = time.monotonic()
        while True:
            now = time.time()
            if emu.stream == "quiet" and time.monotonic() - opened > 4 * emu.keepalive:
                break  # the client gave up long ago
            _, body = emu.status_of(job, now)
            if body != last and (last is None or emu.stream != "quiet"):
                chunk(f"data: {json.dumps(body)}\n\n")
                last, last_sent = body, time.monotonic()
                if body["status"] == "COMPLETED":
                    break
            elif emu.stream != "quiet" and time.monotonic() - last_sent >= emu.keepalive:
                chunk(": keep-alive\n\n")
                last_sent = time.monotonic()
            # Wake at the next change, the next keep-alive, or when the job is moved.
            wait = min(emu.keepalive, max(0.0, job.complete_at - now))
            if body["status"] == "IN_QUEUE":
                wait = min(wait, max(0.0, job.submitted_at + QUEUED_SECONDS - now))
            with emu.changed:
                if emu.stopping:
                    break
                emu.changed.wait(timeout=max(0.005, wait))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    latency = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    run = float(sys.argv[3]) if len(sys.argv) > 3 else 7.0
    stream = sys.argv[4] if len(sys.argv) > 4 else "ok"
    with FalEmulator(latency=latency, run_seconds=run, stream=stream, port=port) as emu:
        print(f"fal emulator at {emu.url} (latency {latency} s, run {run} s, stream {stream})")
        try:
            while True:
                time.sleep(5)
                print(emu.counts, flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
