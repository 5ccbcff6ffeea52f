"""Running the app under uvicorn until SIGINT or SIGTERM.

uvicorn shuts down gracefully on either signal (requests in flight finish: a job charged
is always handed to the provider) and then raises the signal again so that the default
handler ends the process; we install handlers of our own first, so the process instead
returns from `serve` and exits 0.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType

from videogen_cli.config import Settings
from videogen_cli.errors import UsageError
from videogen_cli.http.access_log import write

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 54321  # Supabase's local API port: the app's local base URL is unchanged


def bind(host: str, port: int) -> socket.socket:
    """Listen now, so a taken port is a clear error and `--port 0` can say what it got."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another --port (0 picks a free one) or --host",
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, host: str, port: int, *, notice: str = "") -> str | None:
    """Serve until a signal; returns the signal's name (None if uvicorn stopped by itself)."""
    import uvicorn

    from videogen_cli.http.app import create_app
    from videogen_cli.http.errors import FUNCTIONS

    app = create_app(settings)
    sock = bind(host, port)
    actual_host, actual_port = sock.getsockname()[:2]
    shown = f"[{actual_host}]" if ":" in actual_host else actual_host
    base = f"http://{shown}:{actual_port}"
    write(f"videogen serve: listening on {base} (functions at {base}{FUNCTIONS}){notice}")
    received: list[str] = []

    def remember(signum: int, _: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # the edge writes one line per request, without headers
            lifespan="on",
            server_header=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    stopped = received[0] if received else None
    write(f"videogen serve: stopped{f' ({stopped})' if stopped else ''}")
    return stopped
