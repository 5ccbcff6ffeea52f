"""Where every byte a command prints goes through, and the one error boundary.

Results go to stdout, progress and errors to stderr. In JSON mode stdout carries only
JSON written with `json.dumps` (never through rich, which wraps long lines), and an
error is the object `{"error": {"code", "message", "hint"}}` on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, Protocol

import typer

from videogen_cli.errors import UsageError, VideogenError

INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: a bug, kept apart from README "Exit codes"
BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE, what a shell reports for `git log | head`


def quiet_broken_pipe() -> NoReturn:
    """The reader of stdout went away (`videogen jobs | head -1`): not an error to report.

    stdout is pointed at /dev/null so the interpreter's last flush cannot fail again
    (the recipe in Python's `signal` docs), and the exit is the shell's SIGPIPE code.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(BROKEN_PIPE_EXIT)


# Invisible characters that reorder the text around them (the "Trojan Source" set).
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def safe_text(value: object) -> str:
    """Stored text made safe for a terminal: control characters shown escaped.

    Prompts, errors and reasons come from users and from fal. Printed raw, a prompt
    holding `\\x1b]0;…\\x07` retitles the operator's window and `\\x1b[2J` clears the
    screen; escaped, they read as text (`\\x1b[2J`). Used by `Output.fields` and
    `Output.table`, i.e. by every human record and list.
    """
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" or category in ("Zl", "Zp") or ch in _BIDI_CONTROLS:
            code = ord(ch)
            out.append(
                _NAMED_ESCAPES.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
            )
        else:
            out.append(ch)
    return "".join(out)


def _cell_text(cell: Cell) -> str:
    """A cell as text: `safe_text` of each line; a tuple's items are lines."""
    if isinstance(cell, tuple):
        return "\n".join(safe_text(line) for line in cell) or "-"
    return safe_text("-" if cell is None else cell)


def debug_enabled() -> bool:
    return os.environ.get("VIDEOGEN_DEBUG", "") not in ("", "0")


def safe_lines(text: str) -> str:
    """`safe_text` for each line: the line breaks a caller wrote stay, nothing else does.

    Every human line goes through it (`Output.result`, `info`, `error`), so a stored
    prompt or a fal error quoted in a message or a progress line is escaped too.
    """
    return "\n".join(safe_text(line) for line in text.split("\n"))


class Record(Protocol):
    """A command's result: it carries its JSON form; cli/render.py draws it for people."""

    def to_json(self) -> dict[str, Any]: ...


# A table cell: a value (None shows as "-"), or a tuple of lines shown one under another.
Cell = object


@dataclass(frozen=True)
class Column:
    header: str
    justify: Literal["left", "right"] = "left"
    # At most one column gives way when the table is too wide: `wrap` folds its long
    # cells onto more lines; `ellipsis` cuts them with "…" (`table` says when it did).
    ellipsis: bool = False
    wrap: bool = False


class Output:
    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self._environment: dict[str, str] | None = None

    # --- streams ---------------------------------------------------------------------------
    @staticmethod
    def stderr_is_tty() -> bool:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"

    def result(self, text: str) -> None:
        """A human result line on stdout (control characters escaped, see `safe_lines`)."""
        sys.stdout.write(safe_lines(text) + "\n")
        sys.stdout.flush()

    def fields(self, data: dict[str, Any]) -> None:
        """A record as aligned `name: value` lines on stdout (None `-`, bools yes/no, JSON)."""
        width = max(len(name) for name in data) + 2
        for name, value in data.items():
            if isinstance(value, bool):
                shown = "yes" if value else "no"
            elif isinstance(value, dict | list):
                shown = json.dumps(value, ensure_ascii=False)
            else:
                shown = "-" if value is None else str(value)
            self.result(f"{name + ':':<{width}}{safe_text(shown)}")

    def emit(self, result: Record) -> None:
        """The one way a command prints its result: `--json` prints the record's
        `to_json()`, human mode its renderer (cli/render.py)."""
        if self.json_mode:
            self.json(result.to_json())
            return
        from videogen_cli.cli.render import render

        render(result, self)

    def table(self, columns: list[Column], rows: list[list[Cell]]) -> bool:
        """A list as a rich table with a header on stdout; every cell through `safe_text`.

        Nothing is cut silently: ids never shrink, a column marked `wrap` folds its long
        cells onto more lines, and one marked `ellipsis` ends its cut text with `…`;
        returns True when it cut one, so the caller says so (`--json` has the full
        values). Off a terminal the table is as wide as COLUMNS (default 160), so pipes
        and logs keep whole lines.
        """
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        width = None
        if not sys.stdout.isatty():
            try:
                width = max(40, int(os.environ.get("COLUMNS", "")))
            except ValueError:
                width = 160
        console = Console(file=sys.stdout, width=width, highlight=False, soft_wrap=False)
        cells = [[_cell_text(cell) for cell in row] for row in rows]
        # Rich shrinks columns to nothing when the table is too wide; size them here
        # instead: every column as wide as its widest cell, the one that gives way (wrap
        # or ellipsis) gets the rest.
        natural = [
            max([len(c.header), *(len(line) for row in cells for line in row[i].split("\n"))])
            for i, c in enumerate(columns)
        ]
        flexible = [c.ellipsis or c.wrap for c in columns]
        fixed = sum(w for w, flex in zip(natural, flexible, strict=True) if not flex)
        gaps = 2 * (len(columns) - 1)
        rest = console.width - fixed - gaps
        # Too narrow: a wider table wraps in the terminal, and cuts nothing. A folding
        # column keeps room for a few words a line, a cut one for the start of its text.
        least = 30 if any(c.wrap for c in columns) else 12
        if rest < least:
            rest = least
            console = Console(
                file=sys.stdout, width=fixed + gaps + rest, highlight=False, soft_wrap=False
            )
        table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
        cut = False
        for column, size, flex in zip(columns, natural, flexible, strict=True):
            table.add_column(
                column.header,
                justify=column.justify,
                no_wrap=not column.wrap,
                overflow="fold" if column.wrap else "ellipsis",
                min_width=None if flex else size,
                max_width=min(size, rest) if flex else None,
            )
            cut = cut or (column.ellipsis and size > rest)
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
        # rich exits 1 on a closed pipe, which here means "the job failed".
        console.on_broken_pipe = quiet_broken_pipe  # type: ignore[method-assign]
        console.print(table)
        sys.stdout.flush()
        return cut

    def info(self, text: str) -> None:
        """Progress or a notice on stderr (human mode only: JSON mode keeps stderr quiet)."""
        if not self.json_mode:
            sys.stderr.write(safe_lines(text) + "\n")
            sys.stderr.flush()

    def json(self, obj: dict[str, Any]) -> None:
        """One JSON document on one line of stdout."""
        if self._environment is not None and set(obj) != {"error"}:
            obj = {**obj, "environment": self._environment}
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    # --- environment notice ---------------------------------------------------------------
    def note_environment(
        self, backend: str, provider: str, where: str, fal_url: str | None = None
    ) -> None:
        """Say on stderr what this command talks to: the database and the provider.

        `where` names the database without credentials (the sandbox file, the Supabase
        project host, the Postgres host/port/name); `fal_url` is the fal queue when a
        FAL_KEY is set. JSON objects carry `environment` only when the backend or the
        provider is not the real one (README "Configuration").
        """
        if backend == "sandbox" or provider == "simulator":
            self._environment = {"backend": backend, "provider": provider}
        parts = [f"sandbox database {where}" if backend == "sandbox" else f"{backend} {where}"]
        if provider == "simulator":
            parts.append("simulated fal")
        elif fal_url:
            parts.append(f"fal at {fal_url}")
        else:
            parts.append("no FAL_KEY (commands that call fal will ask for it)")
        self.info(f"note: {', '.join(parts)}")

    # --- errors ------------------------------------------------------------------------------
    def error(self, exc: VideogenError) -> None:
        if self.json_mode:
            self.json({"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}})
        else:
            sys.stderr.write(f"error: {safe_lines(exc.message)}\n")
            if exc.hint:
                sys.stderr.write(f"hint: {safe_lines(exc.hint)}\n")
            sys.stderr.flush()

    def exit_after_result(self, exc: VideogenError) -> NoReturn:
        """Exit with the error's code once the result itself was printed.

        Human mode adds the error line and hint on stderr; JSON mode adds nothing, since
        the printed object (a failed job, a `violated` verdict) already says what happened
        and a second object would break the one-object contract.
        """
        if not self.json_mode:
            self.error(exc)
        raise typer.Exit(exc.exit_code)


def check_arguments_are_text() -> None:
    """Refuse (exit 2) any argument that is not valid Unicode text, before anything runs.

    Python hands undecodable bytes in argv over as lone surrogates; they would fail deep
    inside a store or an HTTP call, possibly after credits moved. NUL cannot be stored in
    Postgres text. Checked once here, for every parameter of the command being run.
    """
    from typer._click.globals import get_current_context  # typer vendors click

    ctx = get_current_context(silent=True)
    while ctx is not None:
        for param in ctx.command.params:
            value = ctx.params.get(param.name or "")
            for text in value if isinstance(value, list | tuple) else [value]:
                problem = _text_problem(text) if isinstance(text, str) else None
                if problem:
                    name = param.opts[0] if param.param_type_name == "option" else None
                    raise UsageError(
                        f"{name or (param.name or 'argument').upper()} {problem}",
                        code="invalid_text",
                        hint="pass plain UTF-8 text (check the shell quoting and the "
                        "terminal's encoding)",
                    )
        ctx = ctx.parent


def _text_problem(text: str) -> str | None:
    from videogen_cli.core.requests import text_problem

    return text_problem(text)


@contextmanager
def command_boundary(out: Output) -> Iterator[Output]:
    """Turn every failure into one line (or one JSON object) and the right exit code."""
    try:
        check_arguments_are_text()
        yield out
    except VideogenError as exc:
        out.error(exc)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        out.error(VideogenError("interrupted", code="interrupted"))
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BrokenPipeError:
        quiet_broken_pipe()
    except Exception as exc:
        if debug_enabled():
            raise
        out.error(
            VideogenError(
                f"unexpected error ({type(exc).__name__}): {exc}",
                code="internal_error",
                hint="rerun with --debug for the traceback",
            )
        )
        raise typer.Exit(INTERNAL_ERROR_EXIT) from None
