"""The README and `--help` stay true to the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from videogen_cli.cli.main import app
from videogen_cli.providers.simulator import PROMPT_WORDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COMMANDS = ["generate", "status", "watch", "refund", "replay-key", "grant", "models", "jobs",
            "credits", "config", "db sql", "db migrate", "sandbox reset", "serve",
            "token", "reconcile",
            "smoke"]  # fmt: skip
GROUPS = ["", "db", "sandbox"]
ROOT_ANYWHERE = {"--debug", "--log-file"}  # cli/main.py hoist_root_options


def help_text(*args: str, columns: int = 200) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def click_command(path: list[str]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        assert isinstance(command, typer.core.TyperGroup), path
        # Through get_command: the root group loads its commands lazily (cli/main.py).
        sub = command.get_command(typer.Context(command), name)
        assert sub is not None, f"no command {' '.join(path)}"
        command = sub
    return command


def example_commands(text: str) -> list[str]:
    """The `$ …` lines of a help text, continuation lines joined."""
    examples: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if pending:
            pending += " " + line
        elif line.startswith("$ "):
            pending = line[2:]
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
        else:
            examples.append(pending)
            pending = ""
    assert not pending, f"an example ends with a continuation: {pending!r}"
    return examples


def test_readme_documents_every_prompt_word() -> None:
    table = README.split("<!-- prompt-words -->")[1].split("<!-- /prompt-words -->")[0]
    assert re.findall(r"^\| `(sim:[a-z-]+)`", table, re.M) == list(PROMPT_WORDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert re.search(r"\$ (\w+=\S+ )?videogen ", result.stdout)
    assert f"videogen {command}" in README


def test_readme_lists_every_exit_code_of_the_design() -> None:
    for code in (0, 1, 2, 3, 4, 5, 6, 130):
        assert f"\n| {code} |" in README


def test_no_help_shows_a_value_type_on_a_flag_or_braces_in_usage() -> None:
    for command in [*GROUPS, *COMMANDS]:
        text = help_text(*command.split())
        assert "<bool>" not in text, command
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "{" not in usage and "}" not in usage, usage


@pytest.mark.parametrize("command", ["status", "refund", "watch"])
def test_usage_lines_name_the_job_id_as_the_readme_does(command: str) -> None:
    usage = next(line for line in help_text(command).splitlines() if "Usage:" in line)
    assert usage.split("[OPTIONS]")[1].strip() in ("JOB_ID", "JOB_ID...")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_a_description(command: str) -> None:
    for param in click_command(command.split()).params:
        if isinstance(param, typer.core.TyperOption):
            assert param.help, f"{command} {param.opts[0]} has no help"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_example_parses_and_names_a_real_command_and_options(command: str) -> None:
    examples = example_commands(help_text(*command.split()))
    assert examples, command
    for example in examples:
        assert "…" not in example, f"short ids are not accepted: {example}"
        words = shlex.split(example)
        while words and (words[0] == "export" or "=" in words[0]):
            words = []  # `export X=…` / `X=… videogen …`
        if not words:
            continue
        for stop in ("|", ">", ">>"):
            if stop in words:
                words = words[: words.index(stop)]
        assert words[0] == "videogen", example
        cmd = click_command(command.split())
        assert words[1 : 1 + len(command.split())] == command.split(), example
        known = {opt for p in cmd.params for opt in [*p.opts, *p.secondary_opts]}
        for word in words[1 + len(command.split()) :]:
            if word.startswith("-"):
                assert word.split("=")[0] in known | ROOT_ANYWHERE | {"--help", "-h"}, example


@pytest.mark.parametrize("command", ["generate", "refund", "grant", "db migrate"])
def test_examples_survive_an_80_column_terminal_for_pasting(command: str) -> None:
    """Each example line is drawn whole, with its trailing backslash, at 80 columns."""
    source = click_command(command.split()).help or ""
    lines = [line.strip() for line in source.splitlines() if line.strip().startswith("$ ")]
    lines += [line.strip() for line in source.splitlines() if line.startswith("    --")]
    drawn = [line.strip() for line in help_text(*command.split(), columns=80).splitlines()]
    for line in lines:
        assert line.replace("\\\\", "\\") in drawn, line


def test_readme_examples_use_no_short_ids() -> None:
    assert "0b7e…" not in README and "2c6f…" not in README


def test_completion_is_switched_on() -> None:
    assert "--install-completion" in help_text()
    result = CliRunner().invoke(app, ["--show-completion", "bash"])
    assert result.exit_code == 0, result.output
    assert "_VIDEOGEN_COMPLETE" in result.stdout


def test_a_missing_job_id_is_named_as_in_the_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    from videogen_cli.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["status"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "error: Missing argument 'JOB_ID'.\nhint: see: videogen status --help\n"
    )


@pytest.mark.parametrize("command", [*GROUPS, *COMMANDS])
def test_every_help_is_drawn_alike_and_readable_at_80_columns(command: str) -> None:
    """One renderer for the root, the sub-groups and every command (cli/main.py
    `_print_help`): no markdown fences or backticks left, examples flush at one space."""
    text = help_text(*command.split(), columns=80)
    lines = text.splitlines()
    assert lines[1].startswith(" Usage: videogen"), text
    assert "```" not in text and "`" not in text, command
    assert max(len(line) for line in lines) <= 80, command
    for line in lines:
        if line.lstrip().startswith("$ "):
            assert line.startswith(" $ "), line
    assert "--help, -h" in text  # typer's own drawing shows `--help  -h`
    if command in GROUPS:
        assert "╭─ Commands" in text


@pytest.mark.parametrize(
    ("command", "option"), [("", "--log-file PATH"), ("smoke", "--junit PATH")]
)
def test_options_show_the_value_they_take(command: str, option: str) -> None:
    assert f"   {option}  " in help_text(*command.split(), columns=100)
