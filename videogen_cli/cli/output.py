"""Where every byte a command prints goes through, and the one error boundary.

Results go to stdout, progress and errors to stderr. In JSON mode stdout carries only
JSON written with `json.dumps` (never through rich, which wraps long lines), and an
error is the object `{"error": {"code", "message", "hint"}}` on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

from videogen_cli.errors import UsageError, VideogenError

INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: a bug, kept apart from design §4's meanings


def debug_enabled() -> bool:
    return os.environ.get("VIDEOGEN_DEBUG", "") not in ("", "0")


class Output:
    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self._environment: dict[str, str] | None = None

    # --- streams ---------------------------------------------------------------------------
    @staticmethod
    def stderr_is_tty() -> bool:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"

    def result(self, text: str) -> None:
        """A human result line on stdout."""
        sys.stdout.write(text + "\n")
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
            self.result(f"{name + ':':<{width}}{shown}")

    def info(self, text: str) -> None:
        """Progress or a notice on stderr (human mode only: JSON mode keeps stderr quiet)."""
        if not self.json_mode:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def json(self, obj: dict[str, Any]) -> None:
        """One JSON document on one line of stdout."""
        if self._environment is not None and set(obj) != {"error"}:
            obj = {**obj, "environment": self._environment}
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    # --- environment notice ---------------------------------------------------------------
    def note_environment(self, backend: str, provider: str, where: str) -> None:
        """Say when the backend or provider is not the real one (design §3)."""
        if backend == "sandbox" or provider == "simulator":
            self._environment = {"backend": backend, "provider": provider}
            parts = []
            if backend == "sandbox":
                parts.append(f"sandbox database {where}")
            else:
                parts.append(f"{backend} backend")
            parts.append("simulated fal" if provider == "simulator" else "real fal")
            self.info(f"note: {', '.join(parts)}")

    # --- errors ------------------------------------------------------------------------------
    def error(self, exc: VideogenError) -> None:
        if self.json_mode:
            self.json({"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}})
        else:
            sys.stderr.write(f"error: {exc.message}\n")
            if exc.hint:
                sys.stderr.write(f"hint: {exc.hint}\n")
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
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid text: a byte that is not UTF-8 at character {exc.start + 1}"
    if "\x00" in text:
        return "is not valid text: it contains a NUL character"
    return None


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
