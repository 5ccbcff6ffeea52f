"""Issue 10's rough edges, as a new user meets them: output, config, the call log, the
sandbox reset, install hints and the Makefile. Exact output where users rely on it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.cli.main import app, main
from videogen_cli.cli.output import safe_text

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "a boat \x1b]0;pwned\x07 then \x1b[2J and \x9b31m and \u202eevil"
HOSTILE_SHOWN = "a boat \\x1b]0;pwned\\x07 then \\x1b[2J and \\x9b31m and \\u202eevil"


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def sql(home: Path, query: str, *params: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(home / "sandbox.sqlite3")
    try:
        with con:
            return con.execute(query, params).fetchall()
    finally:
        con.close()


def make_job(prompt: str = "a paper boat", key: str = "order-edge-1") -> str:
    out = run_json("generate", "-p", prompt, "--duration", "4s", "--idempotency-key", key)
    return str(out["job_id"])


# --- escaping stored text ------------------------------------------------------------------


def test_safe_text_escapes_control_characters_and_keeps_the_rest() -> None:
    assert safe_text(HOSTILE) == HOSTILE_SHOWN
    assert safe_text("line\nnext\ttab") == "line\\nnext\\ttab"
    assert safe_text("vidéo 🎬 ok") == "vidéo 🎬 ok"


def test_status_jobs_and_credits_never_print_a_stored_escape_sequence(isolated_env: Path) -> None:
    job_id = make_job()
    # Stored by another client (the app, a backend function): the CLI only displays it.
    sql(isolated_env, "update video_jobs set prompt = ?, error = ? where job_id = ?",
        HOSTILE, HOSTILE, job_id)  # fmt: skip
    sql(isolated_env, "update credit_ledger set reason = ?", HOSTILE)
    for args in (["status", job_id, "--no-sync"], ["jobs"], ["credits"]):
        result = run(*args, env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x9b" not in result.output, args
        assert "\x07" not in result.output and "\u202e" not in result.output, args
        assert HOSTILE_SHOWN in result.stdout, (args, result.stdout)
    # JSON keeps the data exact: it is for programs, and JSON escapes what it must.
    assert run_json("status", job_id, "--no-sync")["prompt"] == HOSTILE


# --- jobs --------------------------------------------------------------------------------


def test_jobs_with_none_says_so() -> None:
    result = run("jobs")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no jobs\n"


def test_jobs_is_a_table_with_a_header_and_an_ellipsis_and_a_staleness_note() -> None:
    long_prompt = "a lighthouse at dusk " * 10
    job_id = make_job(long_prompt)
    result = run("jobs", env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["JOB_ID", "STATUS", "MODEL", "CREDITS", "CREATED", "(UTC)", "PROMPT"]
    assert row.startswith(f"{job_id}  pending  veo3.1 ")
    assert row.rstrip().endswith("…") and "a lighthouse at d" in row
    assert len(row) <= 100
    assert "statuses as stored (may be stale); `videogen status JOB_ID` asks fal" in result.stderr


def test_jobs_on_a_narrow_terminal_cuts_nothing_but_the_prompt() -> None:
    job_id = make_job()
    result = run("jobs", env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert job_id in result.stdout.splitlines()[1]
    assert "a paper boat" in result.stdout


def test_jobs_with_a_malformed_user_id_is_exit_2_like_every_malformed_id() -> None:
    out = run_json("jobs", "--user", "not-a-uuid", code=2)
    assert out["error"]["code"] == "invalid_input"
    assert out["error"]["message"] == "user id 'not-a-uuid' is not a UUID"


# --- config ------------------------------------------------------------------------------


def test_config_on_a_broken_setup_shows_what_is_set_and_the_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("VIDEOGEN_DATABASE_URL", "postgresql://u:hunter2pw@db.example:5432/app")
    monkeypatch.setenv("FAL_KEY", "fal-id:recognisable-fal-secret")
    result = run("config", "--json")
    assert result.exit_code == 5, result.output
    out = json.loads(result.stdout)
    assert out["problems"] == [
        {
            "code": "config_invalid",
            "message": "both SUPABASE_URL and VIDEOGEN_DATABASE_URL are set",
            "hint": "unset one of them: the tool talks to exactly one backend",
        }
    ]
    assert out["database_url"] == "postgresql://u:****@db.example:5432/app"
    assert out["fal_key"] == "****cret"
    assert out["supabase_url"] == "https://abc.supabase.co"
    assert "hunter2pw" not in result.stdout and "recognisable" not in result.stdout

    human = run("config")
    assert human.exit_code == 5
    assert "database_url:" in human.stdout and "hunter2pw" not in human.stdout
    assert human.stderr == (
        "error: both SUPABASE_URL and VIDEOGEN_DATABASE_URL are set\n"
        "hint: unset one of them: the tool talks to exactly one backend\n"
    )


def test_config_on_a_real_backend_without_fal_key_works_and_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDEOGEN_DATABASE_URL", "postgresql://u:pw@db.example:5432/app")
    out = run_json("config")
    assert (out["backend"], out["provider"], out["fal_key"]) == ("postgres", "fal", None)
    assert "problems" not in out
    assert out["warnings"] == [
        {
            "code": "missing_credentials",
            "message": "the postgres backend is configured but FAL_KEY is not set: generate, "
            "status, watch and replay-key cannot call fal",
            "hint": "export FAL_KEY, or VIDEOGEN_PROVIDER=simulator to use the local simulator "
            "against this real database on purpose",
        }
    ]
    human = run("config")
    assert human.exit_code == 0
    assert human.stderr.startswith("warning: the postgres backend is configured but FAL_KEY")


def test_config_on_a_working_setup_has_no_problems() -> None:
    out = run_json("config")
    assert "problems" not in out and out["backend"] == "sandbox"


# --- the call log ------------------------------------------------------------------------

SECRETS = {
    "FAL_KEY": "fal-key-id:RECOGNISABLE-FAL-SECRET-1",
    "SUPABASE_SERVICE_ROLE_KEY": "RECOGNISABLE-SERVICE-ROLE-2",
    "VIDEOGEN_DATABASE_URL": "postgresql://u:RECOGNISABLE-DB-PW-3@db.example:5432/app",
}
PLANTED = [
    "RECOGNISABLE-FAL-SECRET-1",
    "RECOGNISABLE-SERVICE-ROLE-2",
    "RECOGNISABLE-DB-PW-3",
    "RECOGNISABLE-BEARER-4",
    "RECOGNISABLE-QUERY-5",
    "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl",
]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_call_log_redacts_every_secret_whatever_field_holds_it(
    tmp_path: Path, fmt: str
) -> None:
    from videogen_cli import debuglog

    log = tmp_path / "calls.log"
    env = {**SECRETS, "VIDEOGEN_LOG": str(log), "VIDEOGEN_LOG_FORMAT": fmt}
    debuglog.configure(env=env)
    try:
        debuglog.log_call(
            event="http",
            method="GET",
            path="/fal-ai/veo3.1/requests/r1/status?logs=1&key=RECOGNISABLE-QUERY-5",
            status=401,
            ms=12,
            request_id="r1",
            note="Authorization: Key fal-key-id:RECOGNISABLE-FAL-SECRET-1, "
            "Bearer RECOGNISABLE-BEARER-4, apikey eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2Vy"
            "dmljZV9yb2xlIn0.c2lnbmF0dXJl, service role RECOGNISABLE-SERVICE-ROLE-2, "
            "dsn postgresql://u:RECOGNISABLE-DB-PW-3@db.example:5432/app",
        )
    finally:
        debuglog.configure(env={})
    text = log.read_text()
    for secret in PLANTED:
        assert secret not in text, secret
    assert "/fal-ai/veo3.1/requests/r1/status?logs=1&key=****" in text
    if fmt == "json":
        line = json.loads(text)
        assert (line["event"], line["method"], line["status"], line["ms"]) == (
            "http",
            "GET",
            401,
            12,
        )
    else:
        assert " http GET /fal-ai/veo3.1/requests/r1/status?logs=1&key=**** 401 12ms " in text


def test_log_file_has_one_line_per_fal_call_and_per_store_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("VIDEOGEN_LOG_FORMAT", "json")
    monkeypatch.setenv("VIDEOGEN_PROVIDER", "simulator")
    monkeypatch.setenv("FAL_KEY", SECRETS["FAL_KEY"])
    result = run(
        "--log-file", str(log), "generate", "-p", "a paper boat", "--duration", "4s",
        "--watch", "--interval", "0.01", "--max-interval", "0.02", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = log.read_text()
    assert "RECOGNISABLE" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    http = [line for line in lines if line["event"] == "http"]
    store = [line for line in lines if line["event"] == "store"]
    submit = http[0]
    assert (submit["method"], submit["path"], submit["status"]) == ("POST", "/fal-ai/veo3.1", 200)
    assert submit["request_id"] and isinstance(submit["ms"], int)
    # watch follows fal's status stream first (README "Commands", watch).
    status_path = f"/fal-ai/veo3.1/requests/{submit['request_id']}/status/stream?logs=0"
    assert next(line["path"] for line in http if "/status" in line["path"]) == status_path
    assert {"backend": "sandbox", "call": "create_job", "status": "ok"}.items() <= store[1].items()
    assert any(line["call"] == "apply_status" for line in store)


def test_debug_works_after_the_command_name_and_logs_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["credits", "--debug"])
    assert exit_.value.code == 0
    err = capsys.readouterr().err
    assert " store sandbox get_balance ok " in err and " store sandbox list_ledger ok " in err


def test_a_fal_call_that_gets_no_response_has_its_line_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAL_KEY", SECRETS["FAL_KEY"])
    monkeypatch.setenv("VIDEOGEN_FAL_QUEUE_URL", f"http://127.0.0.1:{closed}/q")
    result = run("--log-file", str(log), "generate", "-p", "a boat", "--duration", "4s", "--json")
    assert result.exit_code == 5, result.output
    http = [line for line in log.read_text().splitlines() if " http " in line]
    # fal's submit is tried three times (README "Exit codes": 5 after retries).
    assert len(http) == 3
    for line in http:
        assert " http POST /q/fal-ai/veo3.1 ConnectError " in line and "host=127.0.0.1" in line
    assert "RECOGNISABLE" not in log.read_text()


def test_a_log_file_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    result = run("--log-file", str(tmp_path / "missing" / "dir" / "x.log"), "models")
    assert result.exit_code == 2
    assert "cannot write the log file" in result.output


def test_without_a_log_nothing_is_logged_and_the_store_is_not_wrapped() -> None:
    from videogen_cli import debuglog
    from videogen_cli.bootstrap import build_service
    from videogen_cli.config import load_settings
    from videogen_cli.storage.sqlite import SqliteStore

    debuglog.configure(env={})
    service = build_service(load_settings())
    try:
        store: object = service._store  # looked at on purpose: which store was built
        assert type(store) is SqliteStore
    finally:
        service.close()


# --- sandbox reset -----------------------------------------------------------------------


def test_sandbox_reset_deletes_everything_and_seeds_again(isolated_env: Path) -> None:
    make_job()
    out = run_json("sandbox", "reset", "--yes")
    assert out == {
        "reset": True,
        "database": str(isolated_env / "sandbox.sqlite3"),
        "demo_user": DEMO_USER_ID,
        "balance": 100,
        "environment": {"backend": "sandbox", "provider": "simulator"},
    } or out == {
        "reset": True,
        "database": str(isolated_env / "sandbox.sqlite3"),
        "demo_user": DEMO_USER_ID,
        "balance": 100,
    }
    assert sql(isolated_env, "select count(*) from video_jobs") == [(0,)]
    assert sql(isolated_env, "select user_id, delta from credit_ledger") == [(DEMO_USER_ID, 100)]


def test_sandbox_reset_without_a_terminal_needs_yes_and_changes_nothing(
    isolated_env: Path,
) -> None:
    make_job()
    out = run_json("sandbox", "reset", code=2)
    assert out["error"]["code"] == "confirmation_required" and out["error"]["hint"] == "pass --yes"
    assert sql(isolated_env, "select count(*) from video_jobs") == [(1,)]


def test_sandbox_reset_refuses_a_real_backend(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_job()
    monkeypatch.setenv("VIDEOGEN_DATABASE_URL", "postgresql://u:pw@db.example:5432/app")
    out = run_json("sandbox", "reset", "--yes", code=2)
    assert out["error"]["code"] == "invalid_input"
    assert "postgres backend is configured" in out["error"]["message"]
    monkeypatch.delenv("VIDEOGEN_DATABASE_URL")
    assert sql(isolated_env, "select count(*) from video_jobs") == [(1,)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("answer", "jobs_left", "code"), [("y\n", 0, 0), ("n\n", 1, 0), ("", 1, 130)]
)
def test_sandbox_reset_asks_on_a_terminal(
    isolated_env: Path, answer: str, jobs_left: int, code: int
) -> None:
    make_job()
    controller, terminal = os.openpty()
    with os.fdopen(controller, "wb", buffering=0) as keyboard:
        proc = subprocess.Popen(
            [sys.executable, "-m", "videogen_cli", "sandbox", "reset"],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        os.close(terminal)
        keyboard.write(answer.encode() if answer else b"\x04")  # "" = Ctrl-D
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "and seed it again? [y/N]" in err
    if code == 130:  # Ctrl-D, as at refund's prompt
        assert err.endswith("\nerror: cancelled; nothing changed\nhint: run it again to retry\n")
    assert sql(isolated_env, "select count(*) from video_jobs") == [(jobs_left,)]
    assert ("reset " in out) == (jobs_left == 0)


# --- db sql --json, install hints -----------------------------------------------------------


def test_db_sql_json_is_one_object_with_the_sql() -> None:
    from videogen_cli.storage.migrate import migration_sql

    assert run_json("db", "sql") == {"sql": migration_sql()}


def test_a_missing_driver_gets_an_install_hint_that_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    for name in [m for m in sys.modules if m.startswith("videogen_cli.storage.postgres")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("VIDEOGEN_DATABASE_URL", "postgresql://u:pw@db.example:5432/app")
    out = run_json("credits", "--user", DEMO_USER_ID, code=5)
    hint = out["error"]["hint"]
    assert "videogen-cli[" not in hint  # not published on any index
    assert f"{sys.executable} -m pip install 'psycopg[binary]>=3.1.4,<4'" in hint
    assert "pip install -e '.[postgres]'" in hint


def test_config_diagnoses_a_missing_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    for name in [m for m in sys.modules if m.startswith("videogen_cli.storage.postgres")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("VIDEOGEN_DATABASE_URL", "postgresql://u:pw@db.example:5432/app")
    result = run("config", "--json")
    assert result.exit_code == 5, result.output
    out = json.loads(result.stdout)
    assert (
        out["backend"] == "postgres"
        and out["database_url"] == "postgresql://u:****@db.example:5432/app"
    )
    [problem] = out["problems"]
    assert (
        problem["message"] == "the postgres backend needs a package that is not installed (psycopg)"
    )
    assert f"{sys.executable} -m pip install 'psycopg[binary]>=3.1.4,<4'" in problem["hint"]
    human = run("config")
    assert human.exit_code == 5 and "database_url:" in human.stdout
    assert "error: the postgres backend needs a package that is not installed" in human.stderr


def test_under_pipx_the_driver_hint_is_pipx_inject(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "pipx_metadata.json").write_text("{}")  # what pipx writes in its venvs
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setitem(sys.modules, "psycopg", None)
    for name in [m for m in sys.modules if m.startswith("videogen_cli.storage.postgres")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("VIDEOGEN_DATABASE_URL", "postgresql://u:pw@db.example:5432/app")
    out = run_json("jobs", code=5)
    assert out["error"]["hint"].startswith(
        "install it next to videogen: pipx inject videogen-cli 'psycopg[binary]>=3.1.4,<4' "
    )


# --- installs ----------------------------------------------------------------------------


def test_floors_are_read_from_pyproject_as_exact_pins() -> None:
    result = subprocess.run(
        [sys.executable, ".ci/floors.py"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    pins = result.stdout.split()
    assert [p.split("==")[0] for p in pins] == [
        "typer", "rich", "httpx", "platformdirs", "fastapi", "uvicorn", "pyjwt",
        "pydantic-settings",
    ]  # fmt: skip
    assert all("==" in p for p in pins)


def _fake_python(tmp_path: Path, version: str) -> Path:
    fake = tmp_path / "python3.9"
    fake.write_text(
        f"#!/bin/sh\n[ \"$1\" = --version ] && echo 'Python {version}' && exit 0\nexit 1\n"
    )
    fake.chmod(0o755)
    return fake


def test_make_demo_with_an_old_python_says_which_python_is_needed(tmp_path: Path) -> None:
    fake = _fake_python(tmp_path, "3.9.6")
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "-s", "demo", f"PYTHON={fake}", f"VENV={venv}"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"videogen needs Python >= 3.11, but PYTHON={fake} is Python 3.9.6." in result.stderr
    assert "make demo PYTHON=python3.12" in result.stderr
    assert not venv.exists()


@pytest.mark.slow
def test_make_rebuilds_a_broken_venv_instead_of_reusing_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    broken = venv / "bin" / "python"
    broken.write_text("#!/bin/sh\nexit 1\n")  # e.g. made by Python 3.9, or half-built
    broken.chmod(0o755)
    (venv / ".runtime").touch()
    result = subprocess.run(
        ["make", "-s", "venv", f"PYTHON={sys.executable}", f"VENV={venv}"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "make: creating" in result.stdout
    assert not (venv / ".runtime").exists()  # the stamps went with the old venv
    new_python = str(venv / "bin" / "python")
    check = subprocess.run(
        [new_python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "True"


def test_the_database_is_named_without_credentials() -> None:
    from videogen_cli.cli.common import database_location
    from videogen_cli.config import load_settings

    def where(**env: str) -> str:
        return database_location(load_settings({"VIDEOGEN_HOME": "/h", **env}))

    url = "postgresql://u:RECOGNISABLE@db.example:5432/app?sslmode=require"
    assert where(VIDEOGEN_DATABASE_URL=url) == "database db.example:5432/app"
    conninfo = "user=u password=RECOGNISABLE host=db.example port=6543 dbname=app"
    assert where(VIDEOGEN_DATABASE_URL=conninfo) == "database db.example:6543/app"
    supabase = {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "k" * 20}
    assert where(**supabase) == "project abc.supabase.co"
    assert where() == "/h/sandbox.sqlite3"


def test_a_stored_error_quoted_in_a_message_is_escaped_too(isolated_env: Path) -> None:
    job_id = make_job()
    sql(isolated_env, "update video_jobs set status = 'failed', error = ? where job_id = ?",
        HOSTILE, job_id)  # fmt: skip
    result = run("watch", job_id)
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert f"error: job {job_id} failed: {HOSTILE_SHOWN}" in result.stderr


def test_the_live_watch_table_escapes_fal_error_text_and_keeps_job_ids_whole() -> None:
    import io
    from datetime import UTC, datetime

    from rich.console import Console

    from tests.support.fakes import FakeClock
    from videogen_cli.cli.progress import LiveReporter
    from videogen_cli.domain import Job, JobStatus

    now = datetime(2026, 11, 25, tzinfo=UTC)
    job_id = "00000000-0000-4000-a000-000000000001"
    error = "bad input [/] [bold]x " + HOSTILE + " and a long tail " * 3
    job = Job(
        job_id=job_id, user_id=DEMO_USER_ID, model="veo3.1", status=JobStatus.FAILED,
        prompt="p", settings={}, credits_used=16, refunded_credits=16, created_at=now,
        updated_at=now, error=error,
    )  # fmt: skip
    reporter = LiveReporter(FakeClock())
    reporter.polled(job, changed=True, transient_error=None)

    def draw(width: int) -> str:
        console = Console(width=width, record=True, file=io.StringIO(), force_terminal=True)
        console.print(reporter._render())  # "[/]" was rich markup: MarkupError, watch died
        return console.export_text()

    wide = draw(300).splitlines()
    assert wide[1].startswith(job_id + "  failed ")
    assert "  bad input [/] [bold]x " + HOSTILE_SHOWN + " and a long tail " in wide[1]
    narrow = draw(100).splitlines()  # the error folds; the job id stays whole, to copy
    assert narrow[1].startswith(job_id + "  failed ")


@pytest.mark.parametrize(
    "args",
    [["--help"], ["generate", "--help"], ["db", "sql"], ["models"], ["credits"], ["config"]],
)
def test_a_reader_that_leaves_early_is_no_error(isolated_env: Path, args: list[str]) -> None:
    """`videogen … | head -1`: the shell's SIGPIPE code, and no "unexpected error"
    (was exit 70 with a BrokenPipeError line, or rich's exit 1, "the job failed")."""
    process = subprocess.Popen(
        [sys.executable, "-m", "videogen_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # no reader: the first write fails with EPIPE
    err = process.stderr.read()
    assert process.wait() == 141, err
    assert "error" not in err and "Traceback" not in err


def test_a_failed_watch_names_the_job_to_look_at(isolated_env: Path) -> None:
    result = run("generate", "-p", "sim:fail", "--duration", "4s", "--watch")
    assert result.exit_code == 1, result.output
    job_id = result.stdout.split()[1]  # "job_id: <id>" comes first
    assert result.stderr.endswith(
        f"hint: failed jobs are refunded automatically; see: videogen status {job_id}\n"
    )


@pytest.mark.parametrize("command", ["status", "watch", "refund"])
def test_a_short_job_id_is_refused_with_a_hint(command: str) -> None:
    extra = ["--reason", "r", "--yes"] if command == "refund" else []
    out = run_json(command, "0b7e3c1e", *extra, code=2)
    assert out["error"] == {
        "code": "invalid_input",
        "message": "job id '0b7e3c1e' is not a UUID",
        "hint": "give the whole job id (36 characters), as generate and videogen jobs print it",
    }


def test_a_failed_job_and_a_deadline_both_said(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDEOGEN_SIM_SPEED", "100")  # sim:fail ends in ~0.1 s, sim:slow in 6 s
    slow = make_job("sim:slow boat", key="order-edge-slow")
    failing = make_job("sim:fail boat", key="order-edge-fail")
    result = run("watch", slow, failing, "--timeout", "3", "--interval", "0.05")
    assert result.exit_code == 1, result.output  # a failure outranks the deadline (exit 6)
    assert result.stderr.endswith(
        f"hint: failed jobs are refunded automatically; see: videogen status {failing}; "
        f"still running after 3 s, resume with: videogen watch {slow}\n"
    )
