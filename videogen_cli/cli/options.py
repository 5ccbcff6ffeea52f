"""Option types shared by command modules; importing this costs Typer only."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (one object; `watch`: one per line).")
]
