"""`videogen smoke --endpoint` against a real `videogen serve` process on a fresh sandbox."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.smoke.harness import FAST, SmokeRun
from videogen_cli.catalog import DEMO_USER_CREDITS, DEMO_USER_ID
from videogen_cli.core.smoke.results import CHECK_NAMES

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videogen_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=180,
    )


@pytest.fixture
def served(isolated_env: Path) -> Iterator[str]:
    """`videogen serve --port 0` on the test's sandbox; yields its base URL once healthy."""
    log = isolated_env.parent / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "videogen_cli", "serve", "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )
    try:
        base = None
        for _ in range(600):  # it says where it listens, then answers /healthz
            found = re.search(r"listening on (http://\S+)", log.read_text())
            if found:
                try:
                    if httpx.get(found[1] + "/healthz", timeout=2).status_code == 200:
                        base = found[1]
                        break
                except httpx.TransportError:
                    pass
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert base is not None, log.read_text()
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run_smoke(tmp_path: Path, base: str, env: dict[str, str]) -> SmokeRun:
    token = cli("token", env=env)
    assert token.returncode == 0, token.stderr
    junit = tmp_path / "smoke-http.xml"
    result = cli(
        "smoke", "--endpoint", base, "--junit", str(junit), *FAST,
        env={**env, "VIDEOGEN_SMOKE_TOKEN": token.stdout.strip()},
    )  # fmt: skip
    return SmokeRun(result.returncode, result.stdout, result.stderr, junit)


def test_smoke_over_http_against_videogen_serve_passes(
    served: str, tmp_path: Path, isolated_env: Path
) -> None:
    run = run_smoke(tmp_path, served, dict(os.environ))
    assert run.exit_code == 0, run.stdout + run.stderr
    # Same sandbox as the server: balances, the refund and the ledger are checked too.
    assert run.cases() == dict.fromkeys(CHECK_NAMES, ("passed", ""))
    credits = cli("credits", "--json", env=dict(os.environ))
    # The token's user got every credit back (the failed job automatically, the
    # completed one by the operator refund check).
    assert f'"balance": {DEMO_USER_CREDITS}' in credits.stdout
    assert DEMO_USER_ID in credits.stdout


def test_from_another_sandbox_smoke_says_what_it_could_not_check(
    served: str, tmp_path: Path, isolated_env: Path
) -> None:
    token = cli("token", env=dict(os.environ)).stdout.strip()
    other = {**os.environ, "VIDEOGEN_HOME": str(tmp_path / "elsewhere")}
    junit = tmp_path / "smoke.xml"
    result = cli(
        "smoke", "--endpoint", served, "--junit", str(junit), "--json", *FAST,
        env={**other, "VIDEOGEN_SMOKE_TOKEN": token},
    )  # fmt: skip
    run = SmokeRun(result.returncode, result.stdout, result.stderr, junit)
    assert run.exit_code == 0, run.stdout + run.stderr
    checks = {c["name"]: (c["status"], c["message"]) for c in run.json()["checks"]}
    assert checks["insufficient_credits_refused"][0] == "skipped"
    assert checks["refund_once_and_invariant"][0] == "skipped"
    assert "balances not checked" in checks["replay_same_job"][1]
    assert not (tmp_path / "elsewhere" / "sandbox.sqlite3").exists()
