"""The `videogen` command: wiring only. Each command lives in a module of its own."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from videogen_cli import __version__
from videogen_cli.cli import admin_cmd, jobs_cmd, money_cmd
from videogen_cli.cli.common import JsonOpt
from videogen_cli.cli.output import Output, command_boundary

HELP = """Operate and test the video-generation backend: credits, jobs, fal.ai.

With no configuration it runs on an embedded sandbox (a local database seeded with a
demo user, and a local fal simulator). Set SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY or
VIDEOGEN_DATABASE_URL, and FAL_KEY, to use the real backend.

Exit codes: 0 ok, 1 job failed / not idempotent, 2 bad input, 3 not found, 4 refused by a
rule, 5 backend or provider unavailable, 6 watch deadline passed, 130 interrupted.
"""

app = typer.Typer(
    name="videogen",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # tracebacks only with --debug, and never with locals
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"videogen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")
    ] = False,
) -> None:
    if debug:
        os.environ["VIDEOGEN_DEBUG"] = "1"


app.command("generate")(jobs_cmd.generate)
app.command("status")(jobs_cmd.status)
app.command("watch")(jobs_cmd.watch_cmd)
app.command("refund")(money_cmd.refund)
app.command("replay-key")(money_cmd.replay_key)
app.command("models")(admin_cmd.models)
app.command("jobs")(admin_cmd.jobs)
app.command("credits")(admin_cmd.credits)
app.command("grant")(money_cmd.grant)
app.command("config")(admin_cmd.config)

db_app = typer.Typer(
    help="The Postgres schema and functions (the SQL contract).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(db_app, name="db")


@db_app.command("sql")
def db_sql() -> None:
    """Print the migration, e.g. into supabase/migrations/.

    Example:

      $ videogen db sql > supabase/migrations/20261124000000_videogen.sql
    """
    out = Output(json_mode=False)
    with command_boundary(out):
        from videogen_cli.storage.migrate import migration_sql

        sys.stdout.write(migration_sql())


@db_app.command("migrate")
def db_migrate(json_mode: JsonOpt = False) -> None:
    """Apply the migration to VIDEOGEN_DATABASE_URL (safe to run again).

    Example:

      $ VIDEOGEN_DATABASE_URL=postgresql://postgres@localhost/app videogen db migrate
    """
    out = Output(json_mode=json_mode)
    with command_boundary(out):
        from videogen_cli.config import load_settings
        from videogen_cli.errors import ConfigError
        from videogen_cli.storage.migrate import apply_migration

        dsn = os.environ.get("VIDEOGEN_DATABASE_URL", "").strip()
        if not dsn:
            raise ConfigError(
                "VIDEOGEN_DATABASE_URL is not set",
                hint="export VIDEOGEN_DATABASE_URL=postgresql://… (for Supabase: the database "
                "connection string), or print the SQL with: videogen db sql",
            )
        # Checked before connecting: a malformed or undecodable URL is refused (exit 5).
        where = load_settings({"VIDEOGEN_DATABASE_URL": dsn, "VIDEOGEN_PROVIDER": "simulator"})
        apply_migration(dsn)
        if json_mode:
            out.json({"migrated": True, "database_url": where.describe()["database_url"]})
        else:
            out.result(f"migrated {where.describe()['database_url']}")


def main(argv: list[str] | None = None) -> None:
    """Entry point. Usage errors in `--json` mode come out as the JSON error object too."""
    from typer._click.exceptions import ClickException  # typer vendors click; no public name

    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args, prog_name="videogen", standalone_mode=False)
    except ClickException as exc:
        if not exc.format_message():
            sys.exit(exc.exit_code)  # no command given: the help was just printed
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "videogen"
        hint = f"see: {where} --help"
        if "--json" in args:
            error = {"code": "invalid_input", "message": exc.format_message(), "hint": hint}
            sys.stdout.write(json.dumps({"error": error}) + "\n")
        else:
            sys.stderr.write(f"error: {exc.format_message()}\nhint: {hint}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
