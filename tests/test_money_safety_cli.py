"""Issue 6 as users and CI see it on the sandbox: cross-provider reads, the not-found
rule, Retry-After, the charge line, `generate --json` errors and `videogen reconcile`,
in-process (CliRunner) and as several real processes at once."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.jobs import charged_job
from tests.support.processes import videogen
from videogen_cli.cli.main import app
from videogen_cli.core.jobs import NOT_FOUND_LIMIT
from videogen_cli.domain import ProviderIdentity, Submission
from videogen_cli.ports import NEVER_SUBMITTED
from videogen_cli.storage.sandbox_functions import format_ts
from videogen_cli.storage.sqlite import SqliteStore

SANDBOX = {"backend": "sandbox", "provider": "simulator"}
JOB_KEYS = {
    "job_id", "user_id", "model", "status", "prompt", "settings", "credits_used",
    "refunded_credits", "provider_request_id", "queue_position", "video_url",
    "thumbnail_url", "error", "created_at", "updated_at",
}  # fmt: skip
FAL_KEY = "fal-test-key-abcdef0123456789"


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def run_json(*args: str, code: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run(*args, "--json", env=env)
    assert result.exit_code == code, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def generate(prompt: str, key: str, code: int = 0) -> dict[str, Any]:
    return run_json(
        "generate", "--prompt", prompt, "--duration", "4s", "--idempotency-key", key, code=code
    )


def ledger(home: Path, job_id: str) -> list[tuple[str, int]]:
    con = sqlite3.connect(home / "sandbox.sqlite3")
    try:
        rows = con.execute(
            "select kind, delta from credit_ledger where job_id = ? order by id", (job_id,)
        ).fetchall()
    finally:
        con.close()
    return [(str(k), int(d)) for k, d in rows]


def invariant(home: Path) -> None:
    con = sqlite3.connect(home / "sandbox.sqlite3")
    try:
        rows = con.execute(
            "select u.balance, coalesce(sum(l.delta), 0) from user_credits u"
            " left join credit_ledger l on l.user_id = u.user_id group by u.user_id"
        ).fetchall()
    finally:
        con.close()
    assert all(balance == total and balance >= 0 for balance, total in rows)


def fal_job(home: Path, key: str) -> str:
    """A job taken by real fal (made with FAL_KEY set), written through the store."""
    store = SqliteStore(home / "sandbox.sqlite3")
    job = charged_job(store, key)
    store.record_submission(
        job.job_id,
        "fal-ai/veo3.1",
        Submission(f"fal-{key}", None, None, None, 3),
        ProviderIdentity("fal", "https://queue.fal.run"),
    )
    store.close()
    return job.job_id


def strand(home: Path, key: str, age: timedelta) -> str:
    """A job charged by a process that died before submitting it, ``age`` ago."""
    store = SqliteStore(home / "sandbox.sqlite3")
    job = charged_job(store, key, model="sora-2-t2v", duration="4")
    store.close()
    con = sqlite3.connect(home / "sandbox.sqlite3")
    with con:
        con.execute(
            "update video_jobs set created_at = ? where job_id = ?",
            (format_ts(datetime.now(UTC) - age), job.job_id),  # the stored format
        )
    con.close()
    return job.job_id


# --- cross-provider reads ---------------------------------------------------------------


def test_a_fal_job_read_without_fal_key_is_shown_and_never_refunded(isolated_env: Path) -> None:
    """The issue's reproduction: made with FAL_KEY, `status` in the same home without it."""
    job_id = fal_job(isolated_env, "order-fal-1")
    stored = run_json("status", job_id, "--no-sync")
    for _ in range(NOT_FOUND_LIMIT + 1):
        out = run_json("status", job_id)
        reason = out.pop("sync_reason")
        assert out == {**stored, "synced": False}
    assert reason.startswith(f"job {job_id} was submitted to fal at https://queue.fal.run, ")
    assert "configured for the simulator of sandbox:" in reason
    human = run("status", job_id)
    assert human.exit_code == 0
    assert f"notice: job {job_id} was submitted to fal at https://queue.fal.run" in human.stderr
    assert re.search(r"^synced: +no$", human.stdout, re.M)
    assert ledger(isolated_env, job_id) == [("charge", -16)]
    assert run_json("credits")["balance"] == 84


def test_a_simulator_job_read_by_fal_elsewhere_asks_nobody(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = generate("a boat", "order-sim-1")["job_id"]
    stored = run_json("status", job_id, "--no-sync")
    # Nothing listens on port 9: a request would be a transient error, not silence.
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    monkeypatch.setenv("VIDEOGEN_FAL_QUEUE_URL", "http://127.0.0.1:9")
    out = run_json("status", job_id)
    reason = out.pop("sync_reason")
    assert out == {
        **stored,
        "synced": False,
        "environment": {"backend": "sandbox", "provider": "fal"},
    }
    assert reason.startswith(f"job {job_id} was submitted to the simulator of sandbox:")
    assert reason.endswith(
        "but this process is configured for fal at http://127.0.0.1:9; shown as stored, not "
        "synced (run it with the VIDEOGEN_HOME whose simulator took the job)"
    )
    assert FAL_KEY not in json.dumps(out) + reason
    assert ledger(isolated_env, job_id) == [("charge", -16)]


def test_watch_of_another_providers_job_stops_at_once_with_exit_5(isolated_env: Path) -> None:
    """Not followed until the deadline (exit 6): it can never be synced here."""
    job_id = fal_job(isolated_env, "order-fal-watch")
    result = run("watch", job_id, "--timeout", "600", "--json")
    assert result.exit_code == 5, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["job_id"] == job_id and lines[0]["status"] == "pending"
    error = lines[-1]["error"]
    assert error["code"] == "provider_mismatch"
    assert error["message"].startswith(f"not followed here: job {job_id} was submitted to fal")
    assert error["hint"] == f"run `videogen watch {job_id}` where its provider is configured"
    assert ledger(isolated_env, job_id) == [("charge", -16)]


def test_a_synced_status_is_exactly_the_job_object(isolated_env: Path) -> None:
    job_id = generate("a boat", "order-sync-1")["job_id"]
    out = run_json("status", job_id)
    assert set(out) == JOB_KEYS | {"environment"}


# --- the not-found rule and Retry-After through the CLI -------------------------------------


def test_status_404_once_is_a_warning_and_the_job_completes(isolated_env: Path) -> None:
    job_id = generate("boat sim:lost-once", "order-lo-1")["job_id"]
    first = run("status", job_id)
    assert first.exit_code == 0, first.output
    assert "warning: no usable answer from the provider (fal does not know request" in (
        first.stderr
    )
    assert f"answer 1 of {NOT_FOUND_LIMIT} in a row" in first.stderr
    assert re.search(r"^status: +pending$", first.stdout, re.M)
    watched = run("watch", job_id, "--interval", "0.01", "--max-interval", "0.02")
    assert watched.exit_code == 0, watched.output
    assert run_json("status", job_id)["status"] == "completed"
    assert ledger(isolated_env, job_id) == [("charge", -16)]


def test_status_404_always_fails_and_refunds_once_after_the_limit(isolated_env: Path) -> None:
    job_id = generate("boat sim:lost", "order-la-1")["job_id"]
    seen = [run_json("status", job_id) for _ in range(NOT_FOUND_LIMIT + 2)]
    assert [s["status"] for s in seen] == ["pending"] * (NOT_FOUND_LIMIT - 1) + ["failed"] * 3
    request_id = seen[-1]["provider_request_id"]
    assert seen[-1]["error"] == (
        f"its provider did not know the request {NOT_FOUND_LIMIT} times in a row: "
        f"fal does not know request {request_id} (Request not found)"
    )
    assert seen[-1]["refunded_credits"] == 16
    assert ledger(isolated_env, job_id) == [("charge", -16), ("refund", 16)]
    invariant(isolated_env)


def test_status_waits_out_retry_after_and_reports_no_trouble(isolated_env: Path) -> None:
    job_id = generate("boat sim:retry-after", "order-ra-1")["job_id"]
    result = run("status", job_id)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr  # the 429 and 503 were waited out, as fal asked
    assert re.search(r"^status: +(processing|completed)$", result.stdout, re.M)


# --- generate: the charge line, and the error of a refused job ------------------------------


def test_the_submitting_line_appears_only_once_credits_were_taken() -> None:
    args = ("generate", "--prompt", "a boat", "--duration", "4s")
    first = run(*args, "--idempotency-key", "order-line-1")
    assert first.exit_code == 0, first.output
    assert first.stderr.count("submitting to fal-ai/veo3.1 (16 credits)…") == 1
    replay = run(*args, "--idempotency-key", "order-line-1")
    assert replay.exit_code == 0 and "submitting to" not in replay.stderr
    invalid = run("generate", "--prompt", "a boat", "--duration", "5s")
    assert invalid.exit_code == 2 and "submitting to" not in invalid.stderr
    unknown = run(*args, "--idempotency-key", "order-line-2", "--user",
               "00000000-0000-4000-a000-0000000000ff")  # fmt: skip
    assert unknown.exit_code == 3 and "submitting to" not in unknown.stderr


def test_generate_json_of_a_refused_job_says_why(isolated_env: Path) -> None:
    out = generate("sim:refuse this", "order-ref-1", code=1)
    assert out.pop("job_id")
    assert out == {
        "status": "failed",
        "credits_used": 16,
        "idempotency_key": "order-ref-1",
        "replayed": False,
        "balance": 100,
        "error": "submission failed: prompt: The content could not be processed because it "
        "contained material flagged by a content checker. (content_policy_violation)",
        "environment": SANDBOX,
    }


# --- reconcile ------------------------------------------------------------------------------


def test_reconcile_dry_run_then_for_real(isolated_env: Path) -> None:
    done = generate("a boat", "order-rc-1")["job_id"]
    lost = generate("boat sim:lost", "order-rc-2")["job_id"]
    stranded = strand(isolated_env, "order-rc-3", timedelta(hours=2))
    theirs = fal_job(isolated_env, "order-rc-4")
    before = run_json("credits")["balance"]
    dry = run_json("reconcile", "--dry-run")
    assert {j["job_id"]: j["action"] for j in dry.pop("jobs")} == {
        done: "would_sync",
        lost: "would_sync",
        stranded: "would_refund_stranded",
        theirs: "skipped_other_provider",
    }
    assert dry == {
        "dry_run": True, "seen": 4, "synced": 0, "completed": 0, "failed_and_refunded": 0,
        "stranded_and_refunded": 0, "skipped_other_provider": 1, "transient_errors": 0,
        "awaiting_submit": 0, "would_sync": 2, "would_refund_stranded": 1,
        "stranded_refunded_credits": 4, "older_than_seconds": 0.0, "grace_seconds": 600.0,
        "environment": SANDBOX,
    }  # fmt: skip
    assert run_json("credits")["balance"] == before
    assert ledger(isolated_env, stranded) == [("charge", -4)]

    runs = [run_json("reconcile") for _ in range(NOT_FOUND_LIMIT)]
    assert [r["stranded_and_refunded"] for r in runs] == [1, 0, 0]
    assert [r["completed"] for r in runs] == [1, 0, 0]
    assert [r["failed_and_refunded"] for r in runs] == [0, 0, 1]
    assert [r["skipped_other_provider"] for r in runs] == [1, 1, 1]
    assert [r["transient_errors"] for r in runs] == [1, 1, 0]
    assert run_json("status", stranded, "--no-sync")["error"] == NEVER_SUBMITTED
    assert ledger(isolated_env, stranded) == [("charge", -4), ("refund", 4)]
    assert ledger(isolated_env, lost) == [("charge", -16), ("refund", 16)]
    assert ledger(isolated_env, theirs) == [("charge", -16)]
    assert ledger(isolated_env, done) == [("charge", -16)]
    invariant(isolated_env)


def test_reconcile_human_summary_and_older_than(isolated_env: Path) -> None:
    young = generate("a boat", "order-rh-1")["job_id"]
    result = run("reconcile", "--older-than", "3600")
    assert result.exit_code == 0, result.output
    assert "seen:                      0" in result.stdout
    assert young not in result.stderr
    result = run("reconcile")
    assert f"{young} completed" in result.stderr
    assert "completed:                 1" in result.stdout


@pytest.mark.parametrize(
    "flags", [["--older-than", "-1"], ["--older-than", "nan"], ["--limit", "0"]]
)
def test_reconcile_bad_options_exit_2_and_change_nothing(
    flags: list[str], isolated_env: Path
) -> None:
    stranded = strand(isolated_env, "order-rb-1", timedelta(hours=2))
    out = run_json("reconcile", *flags, code=2)
    assert out["error"]["code"] == "invalid_input"
    assert ledger(isolated_env, stranded) == [("charge", -4)]


@pytest.mark.slow
def test_several_reconcile_processes_at_once_move_each_credit_once(isolated_env: Path) -> None:
    stranded = [strand(isolated_env, f"order-many-{n}", timedelta(hours=1)) for n in range(6)]
    lost = [generate("boat sim:lost", f"order-ml-{n}")["job_id"] for n in range(3)]
    con = sqlite3.connect(isolated_env / "sandbox.sqlite3")
    with con:  # one answer short of the limit: the next "not found" fails and refunds
        con.execute("update video_jobs set not_found_count = ?", (NOT_FOUND_LIMIT - 1,))
    con.close()
    env = dict(os.environ)
    procs = [videogen("reconcile", "--json", env=env) for _ in range(5)]
    summaries = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        summaries.append(json.loads(stdout))
    # SQLite serialises the sweeps: exactly one process refunds each stranded job.
    assert sum(s["stranded_and_refunded"] for s in summaries) == 6
    for job_id in stranded:
        assert ledger(isolated_env, job_id) == [("charge", -4), ("refund", 4)]
    for job_id in lost:
        assert ledger(isolated_env, job_id) == [("charge", -16), ("refund", 16)]
    assert run_json("credits")["balance"] == 100
    invariant(isolated_env)
