"""Real OS processes sharing one sandbox: the cases threads in one process cannot prove."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import run_at_once, videogen

pytestmark = pytest.mark.slow


def test_ten_processes_with_one_key_make_one_job_and_one_charge(isolated_env: Path) -> None:
    env = dict(os.environ)
    args = ("generate", "--prompt", "a boat", "--duration", "4s", "--idempotency-key",
            "same-key-for-all", "--json")  # fmt: skip
    outputs = run_at_once(args, env, 10)
    assert len({o["job_id"] for o in outputs}) == 1
    assert sorted(o["replayed"] for o in outputs) == [False] + [True] * 9
    assert {o["balance"] for o in outputs} == {84}
    con = sqlite3.connect(isolated_env / "sandbox.sqlite3")
    assert con.execute("select count(*) from video_jobs").fetchone() == (1,)
    assert con.execute(
        "select kind, delta from credit_ledger where job_id is not null"
    ).fetchall() == [("charge", -16)]
    # The simulator received exactly one submission.
    assert con.execute("select count(*) from sim_requests").fetchone() == (1,)
    con.close()


def test_generate_in_one_process_and_watch_in_another(isolated_env: Path) -> None:
    env = dict(os.environ)
    gen = videogen("generate", "--prompt", "a boat", "--duration", "4s", "--json", env=env)
    stdout, stderr = gen.communicate(timeout=60)
    assert gen.returncode == 0, stderr
    job_id = json.loads(stdout)["job_id"]
    watcher = videogen("watch", job_id, "--interval", "0.01", "--max-interval", "0.05",
                       "--json", env=env)  # fmt: skip
    stdout, stderr = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, stderr
    assert json.loads(stdout.splitlines()[-1])["status"] == "completed"


@pytest.mark.parametrize(
    "args", [["--help"], ["generate", "--help"], ["serve", "--help"], ["token", "--help"]]
)
def test_help_imports_no_http_or_database_client(args: list[str]) -> None:
    code = (
        "import sys; from videogen_cli.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "heavy = ('httpx', 'psycopg', 'supabase', 'postgrest',\n"
        "         'fastapi', 'starlette', 'uvicorn', 'jwt',  # the web stack: `serve` only\n"
        "         'pydantic_settings')  # the settings: only a command that runs reads them\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_ctrl_c_during_watch_exits_130_and_says_how_to_resume(isolated_env: Path) -> None:
    import signal
    import time

    # sim:slow lasts 600 simulated seconds: 60 s at speed 10, still running at the Ctrl-C
    # however slow the machine (at the tests' speed 1000 it would be over in 0.6 s).
    env = {**os.environ, "VIDEOGEN_SIM_SPEED": "10"}
    gen = videogen("generate", "--prompt", "sim:slow boat", "--duration", "4s", "--json", env=env)
    stdout, stderr = gen.communicate(timeout=60)
    assert gen.returncode == 0, stderr
    job_id = json.loads(stdout)["job_id"]
    watcher = videogen("watch", job_id, "--interval", "0.05", env=env)
    assert watcher.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the watch loop is running
        line = watcher.stderr.readline()
        if job_id in line:
            break
    watcher.send_signal(signal.SIGINT)
    _, rest = watcher.communicate(timeout=30)
    assert watcher.returncode == 130
    assert f"hint: resume with: videogen watch {job_id}" in rest
    assert "Traceback" not in rest
