"""Option types shared by command modules; importing this costs Typer only."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (one object; `watch`: one per line).")
]

# catalog.DEFAULT_MODEL, repeated so that `generate --help` need not build the catalog
# (its dataclasses cost more than the rest of the command); tests/test_watch_startup.py
# keeps the two equal.
DEFAULT_MODEL = "veo3.1"
