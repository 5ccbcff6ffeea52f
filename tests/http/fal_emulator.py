"""A fal queue over real HTTP: the simulator's protocol (SimulatorTransport) behind a
socket, so a `videogen serve` process configured with FAL_KEY and VIDEOGEN_FAL_QUEUE_URL
runs the real fal adapter against it, as it would against queue.fal.run.

    python -m tests.http.fal_emulator --db PATH [--port 0] [--speed 1000]

prints `listening on http://127.0.0.1:<port>` on stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from videogen_cli.providers.simulator import SimulatorTransport


class Gate:
    """Holds slow submissions: `arrived` is set when one reaches fal, `opened` lets it go."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.opened = threading.Event()


# A submission whose body holds this word is answered only after `slow_seconds`.
SLOW_WORD = "emu:slow-submit"


def make_server(
    db: Path,
    port: int = 0,
    speed: float = 1000.0,
    slow_seconds: float = 3.0,
    gate: Gate | None = None,
) -> ThreadingHTTPServer:
    """With `gate`, a slow submission waits until the test opens it (no timing)."""
    transport = SimulatorTransport(db, speed=speed)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("Host", "127.0.0.1")
            request = httpx.Request(
                self.command,
                f"http://{host}{self.path}",
                headers=[(k, v) for k, v in self.headers.items() if k.lower() != "host"],
                content=body,
            )
            if self.command == "POST" and SLOW_WORD.encode() in body:
                # A slow fal submit: the request stays mid-way until then.
                if gate is None:
                    time.sleep(slow_seconds)
                else:
                    gate.arrived.set()
                    gate.opened.wait(60)
            try:
                response = transport.handle_request(request)
                content = response.read()
                status, headers = response.status_code, response.headers
            except httpx.HTTPError:
                status, headers, content = 503, httpx.Headers(), b'{"detail":"unavailable"}'
            self.send_response(status)
            for name, value in headers.multi_items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            # One request per connection: once the server is shut, fal is unreachable
            # at once, with no kept-alive connection still answering.
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = _relay

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the tests read the serve process's log, not this one's

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def start_in_thread(
    db: Path, speed: float = 1000.0, gate: Gate | None = None
) -> tuple[ThreadingHTTPServer, str]:
    server = make_server(db, 0, speed, gate=gate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--speed", type=float, default=1000.0)
    args = parser.parse_args()
    server = make_server(args.db, args.port, args.speed)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
