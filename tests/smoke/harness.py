"""Shared pieces of the smoke tests: running the command, reading its JUnit report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from videogen_cli.cli.main import app

# Fast polling, and a per-check deadline short enough for a target that never completes.
FAST = ["--interval", "0.01", "--max-interval", "0.05", "--check-timeout", "30"]


@dataclass
class SmokeRun:
    exit_code: int
    stdout: str
    stderr: str
    junit: Path

    def json(self) -> dict[str, Any]:
        lines = self.stdout.splitlines()
        assert len(lines) == 1, self.stdout
        parsed: dict[str, Any] = json.loads(lines[0])
        return parsed

    def cases(self) -> dict[str, tuple[str, str]]:
        """{testcase name: (passed | failed | skipped, message)} from the JUnit file."""
        suite = ET.parse(self.junit).getroot().find("testsuite")
        assert suite is not None
        out: dict[str, tuple[str, str]] = {}
        for case in suite.iter("testcase"):
            assert case.get("classname") == "videogen.smoke"
            failure, skipped = case.find("failure"), case.find("skipped")
            if failure is not None:
                out[case.get("name", "")] = ("failed", failure.get("message", ""))
            elif skipped is not None:
                out[case.get("name", "")] = ("skipped", skipped.get("message", ""))
            else:
                out[case.get("name", "")] = ("passed", "")
        return out

    def failed(self) -> list[str]:
        return sorted(name for name, (status, _) in self.cases().items() if status == "failed")


def smoke(tmp_path: Path, *args: str) -> SmokeRun:
    junit = tmp_path / "reports" / "smoke.xml"
    result = CliRunner().invoke(app, ["smoke", *FAST, "--junit", str(junit), *args])
    return SmokeRun(result.exit_code, result.stdout, result.stderr, junit)
