"""Two corrections to how typer draws `--help`, pinned by tests/test_docs.py.

- Usage lines name arguments the way the README does (`JOB_ID`), where typer 0.28+
  writes `{job_id}`: braces read like a shell expansion or a template to fill in.
- A flag shows no value type, where typer 0.29 writes `--json <bool>`, which reads as if
  the flag took a value (`--json true`).

Typer offers no setting for either, so `apply()` replaces the two methods it draws them
with. Both are guarded: on a typer without them, help is left as typer draws it, and
tests/test_docs.py says so.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption


def _argument_usage(self: TyperArgument, ctx: Any) -> list[str]:
    name = self.metavar or (self.name or "").upper()
    if self.nargs != 1:
        name += "..."
    return [name if self.required else f"[{name}]"]


def apply() -> None:
    if getattr(TyperArgument, "_videogen_help", False):
        return
    # get_usage_pieces is click's public Parameter method for the usage line.
    setattr(TyperArgument, "get_usage_pieces", _argument_usage)  # noqa: B010
    original = getattr(TyperOption, "display_type_rich", None)
    if original is not None:

        def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
            return None if self.is_flag else original(self, ctx)

        setattr(TyperOption, "display_type_rich", display_type_rich)  # noqa: B010
    setattr(TyperArgument, "_videogen_help", True)  # noqa: B010
