"""Running `videogen` as real OS processes, for the tests threads cannot prove."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def videogen(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `python -m videogen_cli ARGS` with no terminal on stdin."""
    return subprocess.Popen(
        [sys.executable, "-m", "videogen_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def run_at_once(args: tuple[str, ...], env: dict[str, str], count: int) -> list[dict[str, Any]]:
    """Start `count` identical `--json` commands together; each must exit 0 with one object."""
    procs = [videogen(*args, env=env) for _ in range(count)]
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        outputs.append(json.loads(stdout))
    return outputs
