"""`serve` and `token`: the app's endpoints over HTTP, and a user token to call them with.

FastAPI, uvicorn and PyJWT are imported inside the commands, never at module level:
`videogen --help` and the other commands must not load them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from videogen_cli.cli.common import JsonOpt
from videogen_cli.cli.output import Output, command_boundary

# How long `videogen token` makes a token valid unless --ttl says otherwise (an hour;
# the longest is http/tokens.py MAX_TTL_SECONDS, which --ttl is checked against).
DEFAULT_TTL_SECONDS = 3600


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port (Supabase's local port; 0 picks a free one).")
    ] = 54321,
) -> None:
    """Serve the app's endpoints (generate-video, get-video-status) over HTTP.

    Supabase's URL layout, over the same core, backend and provider as the other
    commands (the sandbox by default): point the iOS app's supabase-swift client or
    curl at it by changing only the base URL. Every request needs `Authorization:
    Bearer <token>` (get one with `videogen token`). One log line per request on
    stderr; Ctrl-C or SIGTERM stops it (exit 0). The contract:
    GET /functions/v1/openapi.json.

    Examples:

    ```
    $ videogen serve --port 54321

    $ TOKEN=$(videogen token) && curl -H "Authorization: Bearer $TOKEN" \\
        http://127.0.0.1:54321/functions/v1/models
    ```
    """
    out = Output(json_mode=False)
    with command_boundary(out):
        from videogen_cli.config import load_settings
        from videogen_cli.errors import UsageError
        from videogen_cli.http.server import serve as run_server

        if not 0 <= port <= 65535:
            raise UsageError(f"--port must be 0-65535, not {port}")
        settings = load_settings()
        notice = ""
        if settings.backend == "sandbox" or settings.provider == "simulator":
            where = (
                f"sandbox database {settings.sandbox_db}"
                if settings.backend == "sandbox"
                else f"{settings.backend} backend"
            )
            fal = "simulated fal" if settings.provider == "simulator" else "real fal"
            notice = f"; {where}, {fal}"
        run_server(settings, host, port, notice=notice)


def token(
    user: Annotated[
        str | None,
        typer.Option("--user", help="User UUID [env VIDEOGEN_USER_ID; sandbox: the demo user]."),
    ] = None,
    ttl: Annotated[int, typer.Option("--ttl", help="Seconds until it expires.")] = (
        DEFAULT_TTL_SECONDS
    ),
    json_mode: JsonOpt = False,
) -> None:
    """Print a user token (JWT) for `videogen serve`: `Authorization: Bearer <token>`.

    Signed HS256 with SUPABASE_JWT_SECRET, or on the sandbox with a secret created
    once in VIDEOGEN_HOME. On a real backend without SUPABASE_JWT_SECRET: exit 5.
    The token is a credential for that user: keep it out of logs.

    Examples:

    ```
    $ TOKEN=$(videogen token)

    $ videogen token --user USER_ID --ttl 86400 --json
    ```
    """
    out = Output(json_mode=json_mode)
    with command_boundary(out):
        from videogen_cli.catalog import DEMO_USER_ID
        from videogen_cli.cli.records import IssuedToken
        from videogen_cli.config import load_settings
        from videogen_cli.core.requests import check_uuid
        from videogen_cli.domain import iso
        from videogen_cli.errors import UsageError
        from videogen_cli.http.tokens import check_ttl, load_secret, mint

        settings = load_settings()
        chosen = (
            user or settings.user_id or (DEMO_USER_ID if settings.backend == "sandbox" else None)
        )
        if chosen is None:
            raise UsageError(
                "no user given", hint="pass --user UUID or export VIDEOGEN_USER_ID=<uuid>"
            )
        user_id = check_uuid(chosen, "user id")
        ttl = check_ttl(ttl)
        secret = load_secret(settings)
        import time
        from datetime import UTC, datetime

        now = int(time.time())
        signed = mint(secret, user_id, ttl, now=now)
        expires = iso(datetime.fromtimestamp(now + ttl, UTC))
        out.emit(IssuedToken(signed, user_id, expires, ttl))
