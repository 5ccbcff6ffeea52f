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

from videogen_cli.errors import VideogenError

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


@contextmanager
def command_boundary(out: Output) -> Iterator[Output]:
    """Turn every failure into one line (or one JSON object) and the right exit code."""
    try:
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
