"""Operator conveniences: the model catalog, jobs, a user's credits, the configuration,
and resetting the sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from videogen_cli.cli.common import JsonOpt, open_session, resolve_user
from videogen_cli.cli.main import LightCommand, LightGroup
from videogen_cli.cli.output import Output, command_boundary
from videogen_cli.core.reports import CREDITS_LEDGER_ROWS
from videogen_cli.ports import DEFAULT_JOBS_LIMIT

# The most rows `jobs` and `credits` list at once.
MAX_LIST_LIMIT = 500

if TYPE_CHECKING:
    from videogen_cli.config import Settings
    from videogen_cli.errors import ConfigError


def models(json_mode: JsonOpt = False) -> None:
    """List the models, their price and the settings each accepts.

    Example:

    ```
    $ videogen models
    ```
    """
    with open_session(json_mode) as s:
        s.out.emit(s.service.catalog())


def jobs(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's jobs.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIST_LIMIT, help="How many.")
    ] = DEFAULT_JOBS_LIMIT,
    json_mode: JsonOpt = False,
) -> None:
    """List recent jobs, newest first, with their status as stored.

    The list reads the database only: a running job's status may be stale until
    `videogen status JOB_ID` asks fal. Long prompts end with `…` (`--json` has them whole).

    Example:

    ```
    $ videogen jobs --limit 5
    ```
    """
    with open_session(json_mode) as s:
        s.out.emit(s.service.recent_jobs(user, limit))


def credits(
    user: Annotated[
        str | None, typer.Option("--user", help="User UUID [env VIDEOGEN_USER_ID].")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIST_LIMIT, help="Ledger rows.")
    ] = CREDITS_LEDGER_ROWS,
    json_mode: JsonOpt = False,
) -> None:
    """Show a user's balance and latest ledger rows (who moved what, and why).

    Example:

    ```
    $ videogen credits --user USER_ID
    ```
    """
    with open_session(json_mode) as s:
        s.out.emit(s.service.credits(resolve_user(s, user), limit))


def config(json_mode: JsonOpt = False) -> None:
    """Show which backend and provider the environment selects (secrets masked).

    Runs on a broken setup too: it prints what is set and each problem with its fix,
    then exits 5 (`--json`: a `problems` list). A real backend without FAL_KEY is a
    warning, not a problem: everything but the commands that call fal works.

    Example:

    ```
    $ videogen config
    ```
    """
    from videogen_cli.cli.records import ConfigReport
    from videogen_cli.config import check_provider, load_settings
    from videogen_cli.errors import ConfigError

    out = Output(json_mode=json_mode)
    with command_boundary(out):
        problems: list[ConfigError] = []
        warnings: list[ConfigError] = []
        settings: Settings | None = None
        try:
            settings = load_settings()
        except ConfigError as exc:
            problems.append(exc)
        if settings is not None:
            from videogen_cli.bootstrap import check_driver

            try:
                check_driver(settings)
            except ConfigError as exc:
                problems.append(exc)
            try:
                check_provider(settings)
            except ConfigError as exc:
                warnings.append(
                    ConfigError(
                        f"{exc.message}: generate, status, watch and replay-key cannot call fal",
                        code=exc.code,
                        hint=exc.hint,
                    )
                )
        described = settings.describe() if settings is not None else _environment_as_set()
        out.emit(ConfigReport(described, problems, warnings))
        if problems:
            raise typer.Exit(max(p.exit_code for p in problems))


def _environment_as_set() -> dict[str, object]:
    """What the environment holds when it cannot be read as settings: secrets masked."""
    import os

    from videogen_cli.config import _mask, _mask_dsn

    def get(name: str) -> str | None:
        return os.environ.get(name, "").strip() or None

    return {
        "backend": None,
        "provider": get("VIDEOGEN_PROVIDER"),
        "home": get("VIDEOGEN_HOME"),
        "supabase_url": get("SUPABASE_URL"),
        "supabase_service_role_key": _mask(get("SUPABASE_SERVICE_ROLE_KEY")),
        "database_url": _mask_dsn(get("VIDEOGEN_DATABASE_URL")),
        "fal_key": _mask(get("FAL_KEY")),
        "fal_queue_url": get("VIDEOGEN_FAL_QUEUE_URL"),
        "user_id": get("VIDEOGEN_USER_ID"),
        "operator": get("VIDEOGEN_OPERATOR"),
    }


sandbox_app = typer.Typer(
    cls=LightGroup,
    help="The embedded sandbox database (VIDEOGEN_HOME/sandbox.sqlite3).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@sandbox_app.command("reset", cls=LightCommand)
def sandbox_reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Delete the sandbox database and seed it again (demo user with 100 credits).

    Every sandbox job, ledger row and simulated fal request goes. Asks on a terminal;
    without one, `--yes` is required (exit 2). Refused on a real backend (exit 2).

    Example:

    ```
    $ videogen sandbox reset --yes
    ```
    """
    from videogen_cli.catalog import DEMO_USER_ID
    from videogen_cli.cli.records import SandboxReset
    from videogen_cli.config import load_settings
    from videogen_cli.errors import UsageError

    out = Output(json_mode=json_mode)
    with command_boundary(out):
        settings = load_settings()
        if settings.backend != "sandbox":
            raise UsageError(
                f"sandbox reset works on the sandbox only, and the {settings.backend} "
                "backend is configured",
                hint="unset SUPABASE_URL / VIDEOGEN_DATABASE_URL to reset the sandbox",
            )
        path = settings.sandbox_db
        if not yes and not _confirm(f"Delete {path} and seed it again?"):
            out.info("nothing changed")
            return
        from videogen_cli.bootstrap import reset_sandbox

        balance = reset_sandbox(path, DEMO_USER_ID)  # deletes, creates and seeds the file
        out.emit(SandboxReset(str(path), DEMO_USER_ID, balance))


def _confirm(question: str) -> bool:
    """Ask on a terminal (stderr); refuse with exit 2 where nobody can answer."""
    import sys

    from videogen_cli.errors import InterruptedError_, UsageError

    if not sys.stdin.isatty():
        raise UsageError(
            "this deletes the sandbox database and needs confirmation, but there is no "
            "terminal to ask",
            code="confirmation_required",
            hint="pass --yes",
        )
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if not answer:  # Ctrl-C or Ctrl-D: exit 130 like refund's prompt (README "Exit codes")
        sys.stderr.write("\n")
        raise InterruptedError_(
            "cancelled; nothing changed", code="cancelled", hint="run it again to retry"
        )
    return answer.strip().lower() in ("y", "yes")
