"""A bare Typer app with options like `generate`: the start-up baseline of `make bench`."""

from typing import Annotated

import typer

app = typer.Typer(rich_markup_mode="markdown", add_completion=False)


@app.callback()
def root(version: Annotated[bool, typer.Option("--version")] = False) -> None:
    """Bare app."""


@app.command()
def generate(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="x")],
    model: Annotated[str, typer.Option("--model", help="x")] = "veo3.1",
    image_url: Annotated[str | None, typer.Option("--image-url", help="x")] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="x")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="x")] = 300.0,
    watch: Annotated[bool, typer.Option("--watch", help="x")] = False,
    json_mode: Annotated[bool, typer.Option("--json", help="x")] = False,
) -> None:
    """Generate."""


@app.command()
def status(job: str) -> None:
    """Status."""


if __name__ == "__main__":
    app()
