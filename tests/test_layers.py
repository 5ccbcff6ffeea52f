"""The import contracts of pyproject.toml (README "Layout") hold, and each one fails when
its rule is broken: a copy of the package gets one forbidden import and lint-imports
(the check `make lint` runs) must name the broken contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CORE = "the core imports no terminal, HTTP, database or web library"
RICH = "only the CLI imports rich"
ADAPTERS = "only bootstrap chooses adapters"


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_lint_runs_the_contracts() -> None:
    lint = (ROOT / "Makefile").read_text().split("\nlint:")[1].split("\n\n")[0]
    assert "lint-imports" in lint


def test_the_package_keeps_every_contract() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 3 kept, 0 broken." in run.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("core/credits.py", "import typer", CORE),
        ("core/watching.py", "import httpx", CORE),
        ("core/jobs.py", "import sqlite3", CORE),
        ("core/refunds.py", "from videogen_cli.http import errors", CORE),
        ("http/errors.py", "import rich", RICH),
        ("cli/output.py", "from videogen_cli.providers import simulator", ADAPTERS),
        ("http/handlers.py", "from videogen_cli.storage import migrate", ADAPTERS),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    shutil.copytree(
        ROOT / "videogen_cli", tmp_path / "videogen_cli", ignore=shutil.ignore_patterns("*.pyc")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "videogen_cli" / module).open("a") as source:
        source.write(f"\n\ndef _broken() -> None:\n    {line}  # noqa\n")  # a lazy import too
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    report = " ".join(run.stdout.split("Broken contracts")[1].split())
    assert broken in report
    assert f"videogen_cli.{module.removesuffix('.py').replace('/', '.')} ->" in report
