"""fal's queue API over real HTTP on 127.0.0.1, for `videogen` run as real processes.

The answers come from the project's own simulator (``SimulatorTransport``: submit, status,
status stream, result, cancel; the ``sim:`` prompt words of README "Simulator" give 404
once / always and 429 with Retry-After), served by a real ``ThreadingHTTPServer`` so
that a process configured with ``FAL_KEY`` and ``VIDEOGEN_FAL_QUEUE_URL=emulator.url``
talks to it exactly as it would to fal. A few knobs add what prompt words cannot:
gateway answers at submit, 429 + Retry-After on the next status calls, and a log of
every request (to count them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from videogen_cli.providers.simulator import SimulatorTransport

MAX_CONCURRENT = 16  # requests served at once; more wait, so threads stay bounded
# A submission whose body holds this word waits at the gate (FalEmulator(gate=…)) until
# the test opens it: a slow fal submit, with no timing in the test.
SLOW_WORD = "emu:slow-submit"


class Gate:
    """Holds slow submissions: `arrived` is set when one reaches fal, `opened` lets it go."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.opened = threading.Event()


@dataclass
class Knobs:
    """What the next requests get instead of the simulator's answer."""

    # One entry per coming submit: (status, x-fal-request-id or None).
    submit_errors: list[tuple[int, str | None]] = field(default_factory=list)
    # The next N status calls answer 429 with this Retry-After (seconds).
    status_429: int = 0
    retry_after: str = "1"


class FalEmulator:
    def __init__(self, sim_db: Path, *, speed: float = 1000.0, gate: Gate | None = None) -> None:
        self.transport = SimulatorTransport(sim_db, speed=speed)
        self.knobs = Knobs()
        self.gate = gate
        self._stopped = False
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FalEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent): from then on the queue URL is unreachable."""
        if self._stopped:
            return
        self._stopped = True
        if self.gate is not None:
            self.gate.opened.set()  # let a held submission finish
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self.transport.close()

    def count(self, method: str, suffix: str, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for m, p, s in self.requests
                if m == method and p.endswith(suffix) and (status is None or s == status)
            )

    # --- serving -----------------------------------------------------------------------

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self._lock:
            knobs = self.knobs
            if request.method == "POST" and knobs.submit_errors:
                status, request_id = knobs.submit_errors.pop(0)
                headers = {"x-fal-request-id": request_id} if request_id else {}
                return httpx.Response(
                    status, json={"detail": "Internal Server Error"}, headers=headers
                )
            if request.method == "GET" and path.endswith("/status") and knobs.status_429 > 0:
                knobs.status_429 -= 1
                return httpx.Response(
                    429,
                    json={"detail": "Too many requests, slow down"},
                    headers={"retry-after": knobs.retry_after},
                )
        return self.transport.handle_request(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, a streamed body ends at close.
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                with emulator._slots:
                    length = int(self.headers.get("content-length") or 0)
                    body = self.rfile.read(length) if length else b""
                    gate = emulator.gate
                    if gate is not None and self.command == "POST" and SLOW_WORD.encode() in body:
                        gate.arrived.set()
                        gate.opened.wait(60)
                    request = httpx.Request(
                        self.command,
                        f"{emulator.url}{self.path}",
                        headers=dict(self.headers.items()),
                        content=body,
                    )
                    try:
                        response = emulator._answer(request)
                    except httpx.TransportError:
                        response = httpx.Response(502, text="emulator: simulator unavailable")
                    with emulator._lock:
                        emulator.requests.append(
                            (self.command, self.path.split("?")[0], response.status_code)
                        )
                    self.send_response(response.status_code)
                    for name, value in response.headers.items():
                        if name.lower() not in ("content-length", "transfer-encoding"):
                            self.send_header(name, value)
                    streamed = response.headers.get("content-type", "").startswith(
                        "text/event-stream"
                    )
                    if streamed:
                        self.end_headers()
                        try:
                            for chunk in _chunks(response):
                                self.wfile.write(chunk)
                                self.wfile.flush()
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                        return
                    content = response.read()
                    self.send_header("content-length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)

            do_GET = do_POST = do_PUT = _serve

        return Handler


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    yield from response.iter_raw()
