"""The `videogen` command: wiring only. Each command lives in a module of its own.

Start-up is kept to what the command being run needs (tests/test_watch_startup.py):
commands are listed in ``COMMANDS`` by module and function name and imported only
when that command runs or shows its help; `videogen --help` is drawn from ``COMMANDS``.
Typer 0.29 builds a pydantic ``TypeAdapter`` for every option it parses (and imports
pydantic for it); ``_plain_options`` replaces that for the plain types our options use.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from videogen_cli import __version__
from videogen_cli.cli import helpstyle
from videogen_cli.cli.options import JsonOpt

if TYPE_CHECKING:
    from typer import _click

# One line per command: name -> (module in videogen_cli.cli, function, one-line summary).
# The summary is the first line of the function's docstring (tests/test_watch_startup.py
# keeps them equal); it lets `videogen --help` list the commands without importing them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": (
        "jobs_cmd",
        "generate",
        "Create a video job, charging the user's credits exactly once per idempotency key.",
    ),
    "status": (
        "jobs_cmd",
        "status",
        "Show a job; if it is still running, ask fal first and store what it says.",
    ),
    "watch": (
        "jobs_cmd",
        "watch_cmd",
        "Follow jobs until they finish, over fal's status stream or by polling.",
    ),
    "refund": (
        "money_cmd",
        "refund",
        "Give a finished job's credits back to its user: at most once per job, on record.",
    ),
    "replay-key": (
        "money_cmd",
        "replay_key",
        "Send a stored request again with its key and check nothing is charged twice.",
    ),
    "models": (
        "admin_cmd",
        "models",
        "List the models, their price and the settings each accepts.",
    ),
    "jobs": (
        "admin_cmd",
        "jobs",
        "List recent jobs, newest first, with their status as stored.",
    ),
    "credits": (
        "admin_cmd",
        "credits",
        "Show a user's balance and latest ledger rows (who moved what, and why).",
    ),
    "grant": (
        "money_cmd",
        "grant",
        "Add credits to a user's account, creating it when new; on record in the ledger.",
    ),
    "config": (
        "admin_cmd",
        "config",
        "Show which backend and provider the environment selects (secrets masked).",
    ),
    "db": ("main", "db_app", "The Postgres schema and functions (the SQL contract)."),
    "sandbox": (
        "admin_cmd",
        "sandbox_app",
        "The embedded sandbox database (VIDEOGEN_HOME/sandbox.sqlite3).",
    ),
    "reconcile": (
        "reconcile_cmd",
        "reconcile",
        "Sweep every job that is not finished, so none waits for someone to run `status`.",
    ),
    "smoke": (
        "smoke_cmd",
        "smoke",
        "Run the backend plan's checks: create, replay, key reuse, no credits, completion, "
        "failure refund, refund once and the ledger invariant.",
    ),
    "serve": (
        "serve_cmd",
        "serve",
        "Serve the app's endpoints (generate-video, get-video-status) over HTTP.",
    ),
    "token": (
        "serve_cmd",
        "token",
        "Print a user token (JWT) for `videogen serve`: `Authorization: Bearer <token>`.",
    ),
}


class LazyGroup(TyperGroup):
    """The root group: imports a command's module only when that command is resolved."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr, _ = entry
        command: _click.Command
        target = getattr(importlib.import_module(f"videogen_cli.cli.{module_name}"), attr)
        if isinstance(target, typer.Typer):
            # get_group, not get_command: a sub-group of one command (sandbox reset)
            # must stay a group, or `videogen sandbox reset` would not parse.
            command = typer.main.get_group(target)
        else:
            single = typer.Typer(
                add_completion=False,
                rich_markup_mode="markdown",
                context_settings={"help_option_names": ["-h", "--help"]},
            )
            single.command(cmd_name, cls=LightCommand)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        options = [_option_row(param, ctx) for param in self.get_params(ctx)]
        commands = [(name, summary.replace("`", "")) for name, (_, _, summary) in COMMANDS.items()]
        usage = f"{ctx.command_path} [OPTIONS] COMMAND [ARGS]..."
        _print_help(usage, self.help or "", [("Options", options), ("Commands", commands)])


class LightGroup(TyperGroup):
    """A sub-group (db, sandbox) whose help is drawn by ``_print_help`` like every
    command's: one look, and its commands listed with their first docstring line."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        options = [_option_row(param, ctx) for param in self.get_params(ctx)]
        commands = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                first = (command.help or "").strip().splitlines() or [""]
                commands.append((name, first[0].replace("`", "")))
        usage = f"{ctx.command_path} [OPTIONS] COMMAND [ARGS]..."
        _print_help(usage, self.help or "", [("Options", options), ("Commands", commands)])


class LightCommand(TyperCommand):
    """A command whose help is drawn by ``_print_help``, not by typer.rich_utils."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        panels: dict[str, list[tuple[str, str]]] = {}
        pieces = [ctx.command_path, "[OPTIONS]"]
        for param in self.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                name = (param.metavar or (param.name or "").upper()) + (
                    "..." if param.nargs == -1 else ""
                )
                pieces.append(name if param.required else f"[{name}]")
                panels.setdefault("Arguments", []).append(_argument_row(param, name))
            else:
                title = getattr(param, "rich_help_panel", None) or "Options"
                panels.setdefault(title, []).append(_option_row(param, ctx))
        ordered = sorted(panels.items(), key=lambda item: item[0] != "Arguments")
        _print_help(" ".join(pieces), self.help or "", ordered)


_METAVARS: dict[object, str] = {str: "TEXT", float: "FLOAT", int: "INTEGER", Path: "PATH"}


def _describe(param: _click.Parameter) -> str:
    text = (getattr(param, "help", None) or "").replace("`", "")
    default = param.default
    if param.required:
        text += " [required]"
    elif default not in (None, False, (), []) and not callable(default):
        text += f" [default: {default}]"
    return text.strip()


def _option_row(param: _click.Parameter, ctx: _click.Context) -> tuple[str, str]:
    names = ", ".join(sorted([*param.opts, *param.secondary_opts], key=len, reverse=True))
    if not getattr(param, "is_flag", False):
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
        names += " " + (param.metavar or _METAVARS.get(annotation, "VALUE"))
    return (("* " if param.required else "  ") + names, _describe(param))


def _argument_row(param: _click.Parameter, name: str) -> tuple[str, str]:
    return (("* " if param.required else "  ") + name, _describe(param))


def _print_help(usage: str, text: str, panels: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """Usage, the docstring and one panel per group of rows, in Typer's layout.

    Typer's rich help imports rich.markdown, markdown-it and pygments, about half of a
    bare `import typer` again; this needs only rich.panel. Example lines (`$ …`) and
    their continuation lines are printed as written.
    """
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    from videogen_cli.cli.output import quiet_broken_pipe

    console = Console(highlight=False)
    console.on_broken_pipe = quiet_broken_pipe  # type: ignore[method-assign]  # not exit 1
    console.print(Text(f"\n Usage: {usage}\n"))
    width = max(40, console.width - 1)
    for verbatim, lines in _help_blocks(inspect_cleandoc(text)):
        if verbatim:  # examples (``` blocks, or `$ …` paragraphs): exactly as written
            console.print(Text("\n".join(" " + line for line in lines) + "\n"))
        else:
            plain = " ".join(" ".join(lines).replace("`", "").split())
            filled = textwrap.fill(plain, width, initial_indent=" ", subsequent_indent=" ")
            console.print(Text(filled + "\n"))
    for title, rows in panels:
        if not rows:
            continue
        left_width = max(len(left) for left, _ in rows) + 2
        right_width = max(20, console.width - 4 - left_width)
        out: list[str] = []
        for left, right in rows:
            wrapped = textwrap.wrap(right, right_width) or [""]
            out.append(f"{left:<{left_width}}{wrapped[0]}")
            out.extend(" " * left_width + more for more in wrapped[1:])
        console.print(
            Panel(Text("\n".join(out)), title=Text(title), title_align="left", border_style="dim")
        )


def _help_blocks(text: str) -> list[tuple[bool, list[str]]]:
    """A docstring as (verbatim, lines) blocks: fenced ``` blocks and paragraphs that
    start with `$` are verbatim (pasted examples keep their `\\` continuations); other
    paragraphs are prose to refill."""
    blocks: list[tuple[bool, list[str]]] = []
    fenced: list[str] | None = None
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            if paragraph[0].lstrip().startswith("$"):  # continuation lines keep their indent
                blocks.append((True, textwrap.dedent("\n".join(paragraph)).splitlines()))
            else:
                blocks.append((False, list(paragraph)))
            paragraph.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            if fenced is None:
                flush()
                fenced = []
            else:  # as written, less the indent the block shares
                blocks.append((True, textwrap.dedent("\n".join(fenced)).splitlines()))
                fenced = None
        elif fenced is not None:
            fenced.append(line)
        elif line.strip():
            paragraph.append(line)
        else:
            flush()
    flush()
    if fenced:
        blocks.append((True, fenced))
    return blocks


def inspect_cleandoc(text: str) -> str:
    import inspect

    return inspect.cleandoc(text)


HELP = """Operate and test the video-generation backend: credits, jobs, fal.ai.

With no configuration it runs on an embedded sandbox (a local database seeded with a
demo user, and a local fal simulator). Set SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY or
VIDEOGEN_DATABASE_URL, and FAL_KEY, to use the real backend.

Exit codes: 0 ok, 1 job failed / not idempotent, 2 bad input, 3 not found, 4 refused by a
rule, 5 backend or provider unavailable, 6 watch deadline passed, 130 interrupted.
"""

app = typer.Typer(
    name="videogen",
    cls=LazyGroup,
    help=HELP,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion
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
        bool,
        typer.Option(
            "--debug",
            help="Show tracebacks for unexpected errors, and log each HTTP and database "
            "call to stderr. Also accepted after the command name.",
        ),
    ] = False,
    log_file: Annotated[
        str | None,
        typer.Option(
            "--log-file",
            metavar="PATH",
            help="Append one line per HTTP and database call to PATH (secrets redacted) "
            "[env VIDEOGEN_LOG=stderr|PATH, VIDEOGEN_LOG_FORMAT=json].",
        ),
    ] = None,
) -> None:
    from videogen_cli import debuglog

    if debug:
        os.environ["VIDEOGEN_DEBUG"] = "1"
    try:
        debuglog.configure(log_file=log_file, debug=debug)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write the log file: {exc.strerror or exc}", param_hint="--log-file"
        ) from None


# Sub-groups (db, sandbox) are drawn by typer's own help: correct it once.
helpstyle.apply()

db_app = typer.Typer(
    cls=LightGroup,
    help="The Postgres schema and functions (the SQL contract).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@db_app.command("sql", cls=LightCommand)
def db_sql(json_mode: JsonOpt = False) -> None:
    """Print the migration, e.g. into supabase/migrations/ (`--json`: `{"sql": "…"}`).

    Example:

    ```
    $ videogen db sql > supabase/migrations/20261124000000_videogen.sql
    ```
    """
    from videogen_cli.cli.output import Output, command_boundary  # not at `--help`

    out = Output(json_mode=json_mode)
    with command_boundary(out):
        from videogen_cli.bootstrap import migration_sql
        from videogen_cli.cli.records import MigrationSql

        out.emit(MigrationSql(migration_sql()))


@db_app.command("migrate", cls=LightCommand)
def db_migrate(json_mode: JsonOpt = False) -> None:
    """Apply the migration to VIDEOGEN_DATABASE_URL (safe to run again).

    Example:

    ```
    $ export VIDEOGEN_DATABASE_URL=postgresql://postgres@localhost/app
    $ videogen db migrate
    ```
    """
    from videogen_cli.cli.output import Output, command_boundary  # not at `--help`

    out = Output(json_mode=json_mode)
    with command_boundary(out):
        from videogen_cli.bootstrap import apply_migration
        from videogen_cli.config import load_settings
        from videogen_cli.errors import ConfigError

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
        from videogen_cli.cli.records import Migrated

        out.emit(Migrated(where.describe()["database_url"]))


ROOT_FLAGS = ("--debug",)
ROOT_VALUE_OPTIONS = ("--log-file",)


def hoist_root_options(args: list[str]) -> list[str]:
    """Move `--debug` and `--log-file PATH` given after the command name to the front.

    Click reads root options only before the command name; people type them anywhere.
    Arguments after `--` are left alone.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in ROOT_FLAGS or arg.split("=", 1)[0] in ROOT_VALUE_OPTIONS:
            front.append(arg)
            if arg in ROOT_VALUE_OPTIONS and i + 1 < len(args):
                front.append(args[i + 1])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _plain_options() -> None:
    """Parse options of plain types (str, int, float, bool, lists of them) without
    pydantic: Typer 0.29 builds a pydantic TypeAdapter per option when it parses a
    command (importing pydantic for --help alone), ~10 ms each on this machine's
    measure in `make bench`. Other types, and other Typer versions, keep Typer's way.
    """
    try:
        from typer import core as typer_core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - another Typer layout: nothing to avoid
        return
    original = getattr(typer_core._TyperParameter, "get_runtime_param", None)
    if original is None:  # pragma: no cover
        return

    plain = {str: str, int: int, float: float, bool: _parse_bool}

    class PlainParam(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            item_type = self.annotation
            if getattr(item_type, "__origin__", None) is list:
                (item_type,) = item_type.__args__
                return [self._one(item_type, v, param, ctx) for v in value]
            return self._one(item_type, value, param, ctx)

        def _one(self, kind: type, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return value
            try:
                return plain[kind](value)  # type: ignore[operator]
            except (TypeError, ValueError):
                raise BadParameter(
                    f"{value!r} is not a valid {kind.__name__}.", ctx=ctx, param=param
                ) from None

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            annotation = self.type_descriptor.annotation
            item = annotation
            if getattr(annotation, "__origin__", None) is list:
                item = annotation.__args__[0]
            info = self.type_descriptor.parameter_info
            simple = item in plain and info.parser is None and not getattr(info, "click_type", None)
            if (
                simple
                and self.type_descriptor.file_annotation is None
                and not (self.type_descriptor.is_ranged)
            ):
                self._runtime_param = PlainParam(parameter_info=info, annotation=annotation)
        return original(self)

    typer_core._TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]


def _parse_bool(value: object) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    text = str(value).strip().lower()
    if text not in words:
        raise ValueError(value)
    return words[text]


_plain_options()


def main(argv: list[str] | None = None) -> None:
    """Entry point. Usage errors in `--json` mode come out as the JSON error object too."""
    args = hoist_root_options(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="videogen", standalone_mode=False)
    except typer.TyperException as exc:  # typer's usage errors (public since typer 0.28)
        if not exc.format_message():
            sys.exit(exc.exit_code)  # no command given: the help was just printed
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "videogen"
        hint = f"see: {where} --help"
        if "--json" in args:
            import json

            error = {"code": "invalid_input", "message": exc.format_message(), "hint": hint}
            sys.stdout.write(json.dumps({"error": error}) + "\n")
        else:
            sys.stderr.write(f"error: {exc.format_message()}\nhint: {hint}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except BrokenPipeError:  # `videogen --help | head`: the reader left
        from videogen_cli.cli.output import quiet_broken_pipe

        quiet_broken_pipe()
    sys.exit(code if isinstance(code, int) else 0)
