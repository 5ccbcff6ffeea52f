"""The README and `--help` stay true to the code."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from videogen_cli.cli.main import app
from videogen_cli.errors import ErrorCode
from videogen_cli.providers.simulator import PROMPT_WORDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
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
    led_to = {c.exit_code for c in ErrorCode if c.exit_code is not None}
    for code in sorted({0, 1, 2, 3, 4, 5, 6, 130} | led_to):
        assert f"\n| {code} |" in README


# --- error codes: one list (errors.py ErrorCode), the README table, the sources ---------

# A machine code as the sources write it: `code="…"` (a keyword or `default_code = "…"`),
# `exc.code == "…"`, `error.get("code") == "…"`, `{"code": "…"}`, serve's
# `ApiError(404, "…")` and `error_body("…")`, and `_describe_validation`'s `return "…", …`.
_Q = r"""(["'])([^"'\n]*)\1"""
CODE_IN_PYTHON = [
    re.compile(r"(?<![\w.])(?:default_)?code\s*(?::\s*ClassVar\[str\]\s*)?=\s*" + _Q),
    re.compile(r"\.code\s*[!=]=\s*" + _Q),
    re.compile(r"""\.get\(["']code["']\)\s*[!=]=\s*""" + _Q),
    re.compile(r"""["']code["']\s*:\s*""" + _Q),
    re.compile(r"ApiError\(\s*\d{3},\s*" + _Q),
    re.compile(r"error_body\(\s*" + _Q),
    # The sandbox's twin of the SQL functions: _raise("PTxyz", "<code>", detail, hint).
    re.compile(r"_raise\(\s*[\"']PT\d{3}[\"'],\s*" + _Q),
    re.compile(r"^\s*return\s*\(?\s*" + _Q + r",", re.M),
]
# `raise sqlstate 'PTxyz' using message = '<code>'` in the SQL functions.
CODE_IN_SQL = re.compile(r"message\s*=\s*'([^']*)'")


def codes_in_sources(package: Path) -> dict[str, set[str]]:
    """Every machine code written as a literal in the package, with where it is written."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        patterns = CODE_IN_PYTHON if "http" in path.parts else CODE_IN_PYTHON[:-1]
        for pattern in patterns:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found[match.group(2)].add(f"{path.relative_to(package.parent)}:{line}")
    for path in sorted(package.rglob("*.sql")):
        for line, text in enumerate(path.read_text().splitlines(), 1):
            for match in CODE_IN_SQL.finditer(text.split("--")[0]):  # not in comments
                found[match.group(1)].add(f"{path.relative_to(package.parent)}:{line}")
    return found


def readme_error_codes() -> list[tuple[str, int | None, str]]:
    table = README.split("<!-- error-codes -->")[1].split("<!-- /error-codes -->")[0]
    lines = table.strip().splitlines()
    assert lines[:2] == ["| code | exit code | meaning |", "|---|---|---|"]
    rows = [re.fullmatch(r"\| `([a-z0-9_]+)` \| (\d+|—) \| (.+) \|", line) for line in lines[2:]]
    assert all(rows), [line for line, row in zip(lines[2:], rows, strict=True) if not row]
    return [
        (row[1], None if row[2] == "—" else int(row[2]), row[3]) for row in rows if row is not None
    ]


def test_readme_error_code_table_is_the_enum_both_ways() -> None:
    documented = readme_error_codes()
    assert [code for code, _, _ in documented] == [c.value for c in ErrorCode]
    assert documented == [(c.value, c.exit_code, c.meaning) for c in ErrorCode]


def test_every_code_written_in_the_sources_is_in_the_enum() -> None:
    found = codes_in_sources(ROOT / "videogen_cli")
    # The scan finds the codes where they are still literals: the SQL functions, at least.
    assert {"job_not_found", "insufficient_credits", "idempotency_key_in_use"} <= set(found)
    unknown = {code: sorted(where) for code, where in found.items() if code not in set(ErrorCode)}
    assert not unknown, f"codes missing from errors.py ErrorCode (and README): {unknown}"


def test_the_scan_finds_a_literal_that_is_not_a_member(tmp_path: Path) -> None:
    package = tmp_path / "videogen_cli"
    (package / "http").mkdir(parents=True)
    (package / "mod.py").write_text(
        'raise UsageError("x", code="no_such_code")\nif exc.code == "nor_this": pass\n'
    )
    (package / "http" / "h.py").write_text('raise ApiError(418, "teapot", "short and stout")\n')
    (package / "f.sql").write_text(
        "-- raise sqlstate 'PTxyz' using message = '<code>'\n"
        "raise sqlstate 'PT404' using message = 'sql_only',\n"
    )
    assert set(codes_in_sources(package)) == {"no_such_code", "nor_this", "teapot", "sql_only"}


def test_every_code_of_serves_status_table_is_in_the_enum() -> None:
    section = README.split("## For the iOS team")[1].split("\n## ")[0]
    table = section.split("| status | when | `code` |")[1].split("\n\n")[0]
    codes = [
        code
        for row in table.splitlines()[2:]
        for code in re.findall(r"`([a-z_]+)`", row.split(" | ")[-1])
    ]
    assert "submission_failed" in codes
    assert set(codes) <= set(ErrorCode)


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


# Documents outside the repository that a reader does not have (issue 9): a comment
# cites a README section, a SQL function or a test instead. Spelled in pieces here so
# that this file does not match itself.
_OUTSIDE = re.compile("/work/" + "shared|(?:design|reference) " + "§")


def test_nothing_in_the_repository_cites_documents_outside_it() -> None:
    places = [ROOT / "videogen_cli", ROOT / "tests", ROOT / "cassettes", ROOT / ".ci"]
    files = [p for place in places for p in place.rglob("*") if p.is_file()]
    files += [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    cited = []
    for path in files:
        if path.suffix in (".pyc", ".sqlite3", ".db") or "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        cited += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in _OUTSIDE.finditer(text)]
    assert cited == []
