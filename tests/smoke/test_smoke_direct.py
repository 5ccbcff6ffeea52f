"""`videogen smoke` straight through the core, on a fresh sandbox."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.smoke.harness import smoke
from videogen_cli.catalog import DEMO_USER_CREDITS, DEMO_USER_ID
from videogen_cli.cli.main import app
from videogen_cli.core.smoke.checks import smoke_user_ids
from videogen_cli.core.smoke.results import CHECK_NAMES
from videogen_cli.domain import CreateJobResult, NewJob
from videogen_cli.storage.sqlite import SqliteStore


def rows(home: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(home / "sandbox.sqlite3")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_smoke_passes_on_a_fresh_sandbox_with_a_junit_report(
    isolated_env: Path, tmp_path: Path
) -> None:
    run = smoke(tmp_path)
    assert run.exit_code == 0, run.stdout + run.stderr
    cases = run.cases()
    assert list(cases) == list(CHECK_NAMES)
    assert {status for status, _ in cases.values()} == {"passed"}
    import xml.etree.ElementTree as ET

    suite = ET.parse(run.junit).getroot().find("testsuite")
    assert suite is not None
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "7", "failures": "0", "errors": "0", "skipped": "0"}
    # The table on stdout: one row per check, then the verdict.
    table = run.stdout.splitlines()
    assert table[0].split() == ["check", "result", "seconds"]
    assert [line.split()[:2] for line in table[1:8]] == [[n, "passed"] for n in CHECK_NAMES]
    assert table[-1].startswith("smoke passed: 7 passed, 0 failed, 0 skipped against sandbox ")


def test_json_is_exactly_one_object(isolated_env: Path, tmp_path: Path) -> None:
    run = smoke(tmp_path, "--json", "--run-id", "ci-json")
    assert run.exit_code == 0, run.stdout
    assert run.stderr == ""
    out = run.json()
    funded, _ = smoke_user_ids("ci-json")
    assert out["passed"] is True
    assert out["mode"] == "direct"
    assert out["run_id"] == "ci-json"
    assert out["user_id"] == funded
    assert out["target"] == f"sandbox {isolated_env / 'sandbox.sqlite3'}"
    assert out["environment"] == {"backend": "sandbox", "provider": "simulator"}
    assert [(c["name"], c["status"]) for c in out["checks"]] == [
        (name, "passed") for name in CHECK_NAMES
    ]
    assert all(set(c) == {"name", "status", "seconds", "message"} for c in out["checks"])


def test_a_rerun_funds_its_user_once_and_no_other_user_is_touched(
    isolated_env: Path, tmp_path: Path
) -> None:
    assert smoke(tmp_path, "--run-id", "ci-42").exit_code == 0  # creates the sandbox
    demo_ledger = rows(isolated_env, "select * from credit_ledger where user_id = ?", DEMO_USER_ID)
    assert smoke(tmp_path, "--run-id", "ci-42").exit_code == 0
    funded, poor = smoke_user_ids("ci-42")
    grants = rows(
        isolated_env,
        "select user_id, delta, reason, operator from credit_ledger where kind = 'grant'"
        " and user_id <> ? order by user_id",
        DEMO_USER_ID,
    )
    assert sorted(grants) == sorted(
        [
            (funded, 12, "videogen smoke run ci-42", "videogen-smoke"),
            (poor, 1, "videogen smoke run ci-42", "videogen-smoke"),
        ]
    )
    users = {u for (u,) in rows(isolated_env, "select distinct user_id from credit_ledger")}
    assert users == {DEMO_USER_ID, funded, poor}
    assert rows(isolated_env, "select * from credit_ledger where user_id = ?", DEMO_USER_ID) == (
        demo_ledger
    )
    balances = dict(rows(isolated_env, "select user_id, balance from user_credits"))
    # Every credit the runs spent came back: the completed jobs by the operator refund
    # check, the failing ones automatically.
    assert balances == {DEMO_USER_ID: DEMO_USER_CREDITS, funded: 12, poor: 1}


def test_real_fal_says_what_it_would_spend_and_needs_yes(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAL_KEY", "fal-key-for-a-test-that-never-calls-fal")
    monkeypatch.setenv("VIDEOGEN_FAL_QUEUE_URL", "http://127.0.0.1:9")
    run = smoke(tmp_path, "--json")
    assert run.exit_code == 2
    error = run.json()["error"]
    assert error["code"] == "confirmation_required"
    assert "will spend 1 job(s) of sora-2-t2v (4 s each), 4 credits" in error["message"]
    assert error["hint"] == "pass --yes to spend it"
    assert not run.junit.exists()
    # Nothing was granted or charged before the answer.
    others = "select count(*) from credit_ledger where user_id <> ?"
    assert rows(isolated_env, others, DEMO_USER_ID) == [(0,)]


def test_a_replay_that_is_not_marked_fails_its_check_and_the_run(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store broken on purpose: replays come back unmarked. Smoke must notice."""
    real = SqliteStore.create_job

    def unmarked(self: SqliteStore, new: NewJob) -> CreateJobResult:
        return dataclasses.replace(real(self, new), replayed=False)

    monkeypatch.setattr(SqliteStore, "create_job", unmarked)
    run = smoke(tmp_path, "--json")
    assert run.exit_code == 1
    assert run.failed() == ["replay_same_job"]
    message = run.cases()["replay_same_job"][1]
    assert "the replay is not marked (replayed: false)" in message
    assert json.loads(run.stdout)["passed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "http://127.0.0.1:9"], "--endpoint and --token go together"),
        (["--token", "x.y.z"], "--endpoint and --token go together"),
        (["--check-timeout", "0"], "--check-timeout must be greater than 0"),
        (["--run-id", "has space"], "--run-id 'has space' must be"),
        (["--endpoint", "ftp://host", "--token", "x.y.z"], "--endpoint must be an http(s) URL"),
        (["--endpoint", "http://127.0.0.1:9", "--token", "not-a-jwt"], "--token is not a user JWT"),
    ],
)
def test_bad_usage_exits_2_and_runs_nothing(
    isolated_env: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    run = smoke(tmp_path, *args, "--json")
    assert run.exit_code == 2, run.stdout
    assert message in run.json()["error"]["message"]
    assert not run.junit.exists()
    assert not (isolated_env / "sandbox.sqlite3").exists()


def test_a_job_that_never_completes_fails_its_checks_at_their_deadline(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The simulator at its slowest allowed speed (README "Configuration": from 0.01),
    # 100000 times slower than in tests: nothing finishes during the test.
    monkeypatch.setenv("VIDEOGEN_SIM_SPEED", "0.01")
    run = smoke(tmp_path, "--check-timeout", "0.2", "--json")
    assert run.exit_code == 1
    assert run.failed() == ["completes_with_video", "failure_refunded_once"]
    checks = {c["name"]: (c["status"], c["message"]) for c in run.json()["checks"]}
    assert "within 0.2 s; still pending" in checks["completes_with_video"][1]
    status, message = checks["refund_once_and_invariant"]
    assert status == "skipped"
    assert "is pending, not completed; the ledger invariant holds" in message


def test_an_unwritable_junit_path_is_refused_before_anything_runs(
    isolated_env: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(app, ["smoke", "--junit", str(blocker / "smoke.xml"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["message"].startswith(
        f"cannot write the JUnit report to {blocker / 'smoke.xml'}"
    )
    assert not (isolated_env / "sandbox.sqlite3").exists()


def test_a_provider_that_cannot_be_reached_exits_5_and_its_job_is_refunded(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAL_KEY", "fal-key-for-a-test-that-never-calls-fal")
    monkeypatch.setenv("VIDEOGEN_FAL_QUEUE_URL", "http://127.0.0.1:9")  # nothing listens
    run = smoke(tmp_path, "--yes", "--json", "--run-id", "ci-down")
    assert run.exit_code == 5
    out = run.json()  # the report is the one object; no error object follows it
    assert out["passed"] is False
    assert "Connection refused" in out["unreachable"]
    assert run.cases()["create_pending"][0] == "failed"
    funded, _ = smoke_user_ids("ci-down")
    assert rows(isolated_env, "select status, refunded_credits from video_jobs") == [("failed", 4)]
    assert rows(isolated_env, "select balance from user_credits where user_id = ?", funded) == [
        (12,)
    ]
