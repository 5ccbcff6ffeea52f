"""Start-up: a command's module is imported only when that command runs or shows its
help, and no option is parsed through pydantic."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from videogen_cli.cli.main import COMMANDS, app


def _loaded_after(args: list[str]) -> set[str]:
    code = (
        "import sys; from videogen_cli.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stderr.split())


def test_root_help_imports_no_command_module_nor_pydantic() -> None:
    loaded = _loaded_after(["--help"])
    heavy = {"pydantic", "pydantic_settings", "httpx", "typer.rich_utils"}
    assert not (heavy | {"videogen_cli.cli.jobs_cmd", "videogen_cli.config"}) & loaded
    assert not any(m.startswith("videogen_cli.core") for m in loaded)


def test_generate_help_imports_its_module_only_and_no_pydantic() -> None:
    loaded = _loaded_after(["generate", "--help"])
    assert "videogen_cli.cli.jobs_cmd" in loaded
    heavy = {"pydantic", "pydantic_settings", "httpx", "typer.rich_utils", "rich.markdown"}
    assert not (heavy | {"videogen_cli.cli.money_cmd", "videogen_cli.config"}) & loaded


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_help_reads_the_settings(name: str) -> None:
    """The settings (pydantic-settings) are read when a command runs, never for its help."""
    loaded = _loaded_after([name, "--help"])
    assert not {"pydantic_settings", "videogen_cli.config"} & loaded


@pytest.mark.parametrize("name", [name for name in COMMANDS if name != "db"])
def test_each_listed_summary_is_the_commands_docstring(name: str) -> None:
    module, function, summary = COMMANDS[name]
    target = getattr(importlib.import_module(f"videogen_cli.cli.{module}"), function)
    # A sub-group (db, sandbox) is a Typer whose help is its `help=`, not a docstring.
    doc = target.info.help if isinstance(target, typer.Typer) else inspect.getdoc(target)
    first = str(doc or "").split("\n\n")[0]
    assert " ".join(first.split()) == summary


def test_plain_options_are_still_checked() -> None:
    result = CliRunner().invoke(app, ["watch", "00000000-0000-4000-a000-000000000001",
                                      "--interval", "soon"])  # fmt: skip
    assert result.exit_code == 2
    assert "'soon' is not a valid float" in result.output


def test_root_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"│ {name} " in result.stdout


def test_the_default_model_shown_by_generate_is_the_catalogs() -> None:
    from videogen_cli import catalog
    from videogen_cli.cli import options

    assert options.DEFAULT_MODEL == catalog.DEFAULT_MODEL
