"""Pieces every command shares: option types and opening a session on the backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from videogen_cli.cli.options import JsonOpt
from videogen_cli.cli.output import Output, command_boundary

if TYPE_CHECKING:  # imported when a session opens: `--help` needs neither
    from videogen_cli.config import Settings
    from videogen_cli.core.jobs import JobService

__all__ = ["JsonOpt", "Session", "open_session", "resolve_user"]


@dataclass
class Session:
    out: Output
    service: JobService
    settings: Settings


@contextmanager
def open_session(json_mode: bool) -> Iterator[Session]:
    """Load the configuration, open the backend, and guard the command with the boundary."""
    out = Output(json_mode=json_mode)
    with command_boundary(out):
        from videogen_cli.bootstrap import build_service
        from videogen_cli.config import load_settings

        settings = load_settings()
        service = build_service(settings)
        try:
            out.note_environment(
                service.backend_name,
                settings.provider,
                database_location(settings),
                settings.fal_queue_url if settings.fal_key else None,
            )
            yield Session(out, service, settings)
        finally:
            service.close()


def resolve_user(session: Session, user: str | None) -> str:
    """--user, else VIDEOGEN_USER_ID, else (sandbox only) the demo user."""
    from videogen_cli.catalog import DEMO_USER_ID
    from videogen_cli.errors import UsageError

    chosen = user or session.settings.user_id
    if chosen:
        return chosen
    if session.settings.backend == "sandbox":
        return DEMO_USER_ID
    raise UsageError("no user given", hint="pass --user UUID or export VIDEOGEN_USER_ID=<uuid>")


def database_location(settings: Settings) -> str:
    """Where the database is, for notes: never a user name, password or key."""
    return settings.database_location()
