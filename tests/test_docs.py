"""The README and `--help` stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from videogen_cli.cli.main import app
from videogen_cli.providers.simulator import PROMPT_WORDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COMMANDS = ["generate", "status", "watch", "refund", "replay-key", "grant", "models", "jobs",
            "credits", "config", "db sql", "db migrate", "serve", "token",
            "smoke"]  # fmt: skip


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
