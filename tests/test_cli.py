"""The commands as users and CI see them: exact JSON, exit codes, and state afterwards.

Runs the whole stack in-process (Typer's CliRunner → core → sandbox store → real fal
adapter → simulator), with the simulator 1000× faster than real time.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.cli.main import app, main

SANDBOX = {"backend": "sandbox", "provider": "simulator"}
FAST = ["--interval", "0.01", "--max-interval", "0.02"]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input, env=env)


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def balance() -> int:
    return int(run_json("credits")["balance"])


def generate(*extra: str, key: str = "order-0001", code: int = 0) -> dict[str, Any]:
    return run_json(
        "generate", "--prompt", "a paper boat", "--duration", "4s",
        "--idempotency-key", key, *extra, code=code,
    )  # fmt: skip


def db_rows(home: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(home / "sandbox.sqlite3")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_generate_prints_exactly_the_generate_object(isolated_env: Path) -> None:
    out = generate()
    assert UUID_RE.match(out.pop("job_id"))
    assert out == {
        "status": "pending",
        "credits_used": 16,
        "idempotency_key": "order-0001",
        "replayed": False,
        "balance": 84,
        "environment": SANDBOX,
    }


def test_generate_without_a_key_makes_and_prints_one() -> None:
    out = run_json("generate", "--prompt", "a boat", "--duration", "4s")
    assert UUID_RE.match(out["idempotency_key"])


def test_second_generate_with_the_same_key_is_a_replay(isolated_env: Path) -> None:
    first = generate()
    second = generate()
    assert second == {**first, "replayed": True}
    assert balance() == 84
    assert db_rows(isolated_env, "select count(*) from video_jobs") == [(1,)]


def test_human_generate_shows_the_key_and_the_sandbox_notice() -> None:
    result = run(
        "generate", "--prompt", "a boat", "--duration", "4s", "--idempotency-key", "k-12345678"
    )
    assert result.exit_code == 0, result.output
    assert "idempotency_key: k-12345678" in result.stdout
    assert "status:          pending" in result.stdout
    assert "note: sandbox database" in result.stderr and "simulated fal" in result.stderr


def test_generate_watch_json_streams_job_lines_to_completion() -> None:
    result = run(
        "generate", "--prompt", "a boat", "--duration", "4s", "--idempotency-key", "order-w1",
        "--watch", *FAST, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["replayed"] is False and lines[0]["status"] == "pending"
    statuses = [line["status"] for line in lines[1:]]
    assert statuses[-1] == "completed"
    assert statuses == sorted(statuses, key=["pending", "processing", "completed"].index)
    final = lines[-1]
    assert set(final) == {
        "job_id", "user_id", "model", "status", "prompt", "settings", "credits_used",
        "refunded_credits", "provider_request_id", "queue_position", "video_url",
        "thumbnail_url", "error", "created_at", "updated_at", "environment",
    }  # fmt: skip
    assert final["video_url"].startswith("https://") and final["thumbnail_url"] is None
    assert final["settings"] == {"aspect_ratio": "16:9", "duration": "4s", "resolution": "720p"}
    assert (final["user_id"], final["model"], final["credits_used"]) == (DEMO_USER_ID, "veo3.1", 16)


def test_failed_job_exits_1_and_its_credits_come_back_once(isolated_env: Path) -> None:
    result = run(
        "generate", "--prompt", "boat sim:fail", "--duration", "4s", "--idempotency-key",
        "order-f1", "--watch", *FAST,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "failed: Runner disconnected" in result.stdout
    assert result.stderr.splitlines()[-2].startswith("error: job ")
    assert balance() == 100
    job_id = result.stdout.splitlines()[-1].split()[0]
    # More pollers and an operator refund afterwards move nothing.
    assert run_json("status", job_id)["refunded_credits"] == 16
    again = run_json("refund", job_id, "--reason", "customer asked", "--yes")
    assert (again["refunded_now"], again["balance"]) == (False, 100)
    assert db_rows(
        isolated_env, "select kind, delta from credit_ledger where job_id = ?", job_id
    ) == [
        ("charge", -16),
        ("refund", 16),
    ]


def test_refused_submission_exits_1_with_the_failed_job(isolated_env: Path) -> None:
    out = generate("--prompt", "sim:refuse", key="order-r1", code=1)
    assert (out["status"], out["balance"]) == ("failed", 100)


def test_watch_of_a_slow_job_exits_6_with_a_resume_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # sim:slow runs 600 simulated seconds: 0.6 s at the tests' speed, which a loaded
    # machine can spend on the three commands below; 6 s at this speed.
    monkeypatch.setenv("VIDEOGEN_SIM_SPEED", "100")
    job_id = generate("--prompt", "sim:slow boat", key="order-s1")["job_id"]
    result = run("watch", job_id, "--timeout", "0.2", *FAST)
    assert result.exit_code == 6, result.output
    assert f"resume with: videogen watch {job_id}" in result.stderr
    as_json = run("watch", job_id, "--timeout", "0.1", *FAST, "--json")
    assert as_json.exit_code == 6
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert lines[-2]["status"] == "processing"
    assert lines[-1]["error"]["code"] == "watch_timeout"
    assert f"videogen watch {job_id}" in lines[-1]["error"]["hint"]


def test_watch_without_a_terminal_prints_one_line_per_change() -> None:
    job_id = generate(key="order-l1")["job_id"]
    result = run("watch", job_id, *FAST)
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == len({line.split("] ", 1)[1] for line in progress})
    # The final state is printed once, on stdout only (not again on stderr).
    assert result.stdout.startswith(f"{job_id} completed https://")
    assert len(result.stdout.splitlines()) == 1
    assert "completed" not in result.stderr


def test_status_no_sync_reads_the_database_only() -> None:
    job_id = generate(key="order-n1")["job_id"]
    out = run_json("status", job_id, "--no-sync")
    assert (out["status"], out["video_url"], out["queue_position"]) == ("pending", None, 1)


def test_refund_moves_credits_once(isolated_env: Path) -> None:
    job_id = generate(key="order-rf")["job_id"]
    assert run("watch", job_id, *FAST).exit_code == 0
    dry = run_json("refund", job_id, "--reason", "blank video", "--operator", "alice", "--dry-run")
    assert dry == {  # the store's answer to the same question: it would move 16 credits
        "job_id": job_id, "refunded_credits": 16, "refunded_now": True, "balance": 100,
        "reason": "blank video", "operator": "alice", "dry_run": True, "environment": SANDBOX,
    }  # fmt: skip
    assert balance() == 84
    args = ("refund", job_id, "--reason", "blank video", "--operator", "alice", "--yes")
    first, second = run_json(*args), run_json(*args)
    assert first == {
        "job_id": job_id, "refunded_credits": 16, "refunded_now": True, "balance": 100,
        "reason": "blank video", "operator": "alice", "environment": SANDBOX,
    }  # fmt: skip
    assert second == {**first, "refunded_now": False}
    assert db_rows(
        isolated_env, "select kind, reason, operator from credit_ledger where job_id = ?", job_id
    ) == [("charge", "generate", "videogen"), ("refund", "blank video", "alice")]


def test_refund_without_a_terminal_needs_yes_and_changes_nothing() -> None:
    job_id = generate(key="order-ry")["job_id"]
    run("watch", job_id, *FAST)
    out = run_json("refund", job_id, "--reason", "x", code=2)
    assert out["error"]["code"] == "confirmation_required"
    assert "--yes" in out["error"]["hint"]
    assert balance() == 84


def test_replay_key_says_idempotent() -> None:
    job_id = generate(key="order-rk")["job_id"]
    out = run_json("replay-key", "order-rk")
    assert out == {
        "idempotency_key": "order-rk", "job_id": job_id, "replayed": True,
        "balance_before": 84, "balance_after": 84, "verdict": "idempotent",
        "environment": SANDBOX,
    }  # fmt: skip
    shown = run_json("replay-key", "order-rk", "--show")
    assert shown["request"]["prompt"] == "a paper boat" and shown["job_id"] == job_id


def test_replay_key_show_prints_the_stored_request_as_before() -> None:
    # The sandbox stores the request (and the settings) with sorted keys, as it always has:
    # `replay-key --show --json` prints them byte for byte in that order.
    generate(key="order-rk-order")
    request = run_json("replay-key", "order-rk-order", "--show")["request"]
    assert list(request) == ["image_url", "model", "prompt", "settings", "user_id"]
    assert list(request["settings"]) == ["aspect_ratio", "duration", "resolution"]


@pytest.mark.parametrize(
    ("args", "code", "error_code"),
    [
        (["generate", "--prompt", "x", "--duration", "5s"], 2, "invalid_input"),
        (["generate", "--prompt", "x", "--model", "sora-9"], 3, "model_not_found"),
        (["generate", "--prompt", "x", "--model", "sora-2-i2v"], 2, "invalid_input"),
        (["generate", "--prompt", "x", "--user", "nobody"], 2, "invalid_input"),
        (["generate", "--prompt", "x", "--user", "00000000-0000-4000-a000-00000000beef"], 3,
         "user_not_found"),
        (["generate", "--prompt", "x", "--idempotency-key", "short"], 2, "invalid_input"),
        (["generate", "--prompt", "x", "--watch", "--interval", "0"], 2, "invalid_input"),
        (["generate", "--prompt", "a paper boat", "--duration", "8s",
          "--idempotency-key", "order-0001"], 4, "idempotency_key_reused"),
        (["status", "not-a-uuid"], 2, "invalid_input"),
        (["status", "00000000-0000-4000-a000-00000000ffff"], 3, "job_not_found"),
        (["watch", "00000000-0000-4000-a000-00000000ffff"], 3, "job_not_found"),
        (["refund", "00000000-0000-4000-a000-00000000ffff", "--reason", "x"], 3,
         "job_not_found"),
        (["refund", "{job}", "--reason", "  ", "--yes"], 2, "invalid_input"),
        (["refund", "{job}", "--reason", "x", "--yes"], 4, "job_not_refundable"),
        (["replay-key", "never-used-key"], 3, "key_not_found"),
        (["credits", "--user", "00000000-0000-4000-a000-00000000beef"], 3, "user_not_found"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_error_and_changes_nothing(
    args: list[str], code: int, error_code: str, isolated_env: Path
) -> None:
    job_id = generate("--prompt", "a paper boat sim:slow")["job_id"]
    before = db_rows(isolated_env, "select * from credit_ledger")
    args = [a.replace("{job}", job_id) for a in args]
    out = run_json(*args, code=code)
    assert set(out) == {"error"} and out["error"]["code"] == error_code
    assert "\n" not in out["error"]["message"]
    human = run(*args)
    assert human.exit_code == code
    assert human.stderr.splitlines()[-2 if out["error"]["hint"] else -1].startswith("error: ")
    assert "Traceback" not in human.output
    assert db_rows(isolated_env, "select * from credit_ledger") == before


def test_insufficient_credits_is_exit_4() -> None:
    for n in range(3):
        generate("--duration", "8s", key=f"order-b{n}")
    out = generate(key="order-b3", code=4)
    assert out["error"]["code"] == "insufficient_credits"
    assert balance() == 4


def test_usage_errors_from_the_parser_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--json"])
    assert exit_.value.code == 2
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["code"] == "invalid_input" and "--prompt" in out["error"]["message"]


def test_fal_without_fal_key_is_refused_where_fal_is_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real-backend case: tests/backends/test_support_without_fal_key.py.
    monkeypatch.setenv("VIDEOGEN_PROVIDER", "fal")
    out = generate(code=5)
    assert out["error"] == {
        "code": "missing_credentials",
        "message": "VIDEOGEN_PROVIDER=fal but FAL_KEY is not set",
        "hint": "export FAL_KEY (fal.ai dashboard > Keys)",
    }
    assert balance() == 100  # refused before any charge; and `credits` needs no key


def test_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "fal-key-id:very-secret-value")
    monkeypatch.setenv("VIDEOGEN_DATABASE_URL", "postgresql://u:secretpw@db.example:5432/app")
    result = run("config", "--json")
    assert result.exit_code == 0, result.output
    assert "very-secret" not in result.stdout and "secretpw" not in result.stdout
    out = json.loads(result.stdout)
    assert out["fal_key"] == "****alue"
    assert out["database_url"] == "postgresql://u:****@db.example:5432/app"
    assert (out["backend"], out["provider"]) == ("postgres", "fal")


def test_models_lists_the_catalog() -> None:
    out = run_json("models")
    assert [m["slug"] for m in out["models"]] == [
        "sora-2-i2v",
        "sora-2-t2v",
        "veo3.1",
        "veo3.1-i2v",
    ]
    assert out["models"][2]["settings"]["duration"] == {
        "allowed": ["4s", "6s", "8s"],
        "default": "8s",
    }


def test_a_malformed_fal_key_fails_before_any_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "bad key\twith control")
    out = generate(code=5)
    assert out["error"]["code"] == "provider_auth"
    assert "bad key" not in json.dumps(out)
    monkeypatch.delenv("FAL_KEY")
    assert balance() == 100


def test_grant_adds_credits_on_record(isolated_env: Path) -> None:
    user = "2c6f0b1e-0000-4000-a000-0000000000aa"
    args = ("grant", "--user", user, "--credits", "30", "--reason", "beta tester")
    refused = run_json(*args, code=2)
    assert refused["error"]["code"] == "confirmation_required"
    out = run_json(*args, "--operator", "alice", "--yes")
    assert out == {
        "user_id": user, "granted": 30, "granted_now": True, "balance": 30,
        "reason": "beta tester", "operator": "alice", "idempotency_key": None,
        "environment": SANDBOX,
    }  # fmt: skip
    assert run_json("credits", "--user", user)["ledger"][0]["kind"] == "grant"
    for bad in (["--credits", "0"], ["--credits", "2000000"], ["--user", "nope"]):
        bad_args = [*args, "--yes", *bad]
        assert run_json(*bad_args, code=2)["error"]["code"] == "invalid_input"
    assert db_rows(isolated_env, "select count(*) from credit_ledger where user_id = ?", user) == [
        (1,)
    ]


def test_parser_errors_are_one_line_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["refund", "00000000-0000-4000-a000-000000000001"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: Missing option '--reason'.\nhint: see: videogen refund --help\n"


# --- one way to print a result -------------------------------------------------------------


def test_watch_defaults_are_the_ones_the_readme_and_the_help_quote() -> None:
    from videogen_cli.core import watching

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert (
        f"[--timeout {watching.DEFAULT_TIMEOUT_SECONDS:g}] "
        f"[--interval {watching.DEFAULT_INTERVAL_SECONDS:g}] "
        f"[--max-interval {watching.DEFAULT_MAX_INTERVAL_SECONDS:g}] "
        f"[--factor {watching.DEFAULT_FACTOR:g}]"
    ) in readme
    assert watching.Backoff() == watching.Backoff(
        watching.DEFAULT_INTERVAL_SECONDS,
        watching.DEFAULT_MAX_INTERVAL_SECONDS,
        watching.DEFAULT_FACTOR,
    )
    help_text = " ".join(run("watch", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "backing off 5 s → 10 s → 20 s" in help_text
    assert f"[default: {watching.DEFAULT_TIMEOUT_SECONDS}]" in help_text


def test_empty_lists_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    from videogen_cli.cli.output import Output
    from videogen_cli.core.reports import CreditsReport, JobList, ModelCatalog

    out = Output(json_mode=False)
    out.emit(ModelCatalog(()))
    out.emit(JobList((), "2c6f0b1e-0000-4000-a000-0000000000aa"))
    out.emit(CreditsReport("2c6f0b1e-0000-4000-a000-0000000000aa", 0, ()))
    assert capsys.readouterr().out == (
        "no models\n"
        "no jobs for user 2c6f0b1e-0000-4000-a000-0000000000aa\n"
        "user 2c6f0b1e-0000-4000-a000-0000000000aa: 0 credits\n"
        "no ledger rows\n"
    )
    Output(json_mode=True).emit(ModelCatalog(()))
    assert capsys.readouterr().out == '{"models": []}\n'


def test_the_models_table_has_a_header_and_cuts_no_setting() -> None:
    result = run("models", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "ENDPOINT", "CREDITS/S", "INPUT", "SETTINGS"]
    assert "…" not in result.stdout
    words = result.stdout.split()
    for word in ("veo3.1-i2v", "fal-ai/veo3.1/image-to-video", "--aspect-ratio:", "1080p,"):
        assert word in words


def test_a_long_ledger_reason_wraps_instead_of_being_cut() -> None:
    reason = "goodwill after the outage of the twelfth " * 4
    user = "2c6f0b1e-0000-4000-a000-0000000000bb"
    run_json("grant", "--user", user, "--credits", "5", "--reason", reason, "--yes")
    result = run("credits", "--user", user, env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    header, *rows = result.stdout.splitlines()[1:]
    start = header.index("REASON")
    assert len(rows) > 1  # folded onto more lines, each in the REASON column
    assert " ".join(" ".join(row[start:].split()) for row in rows) == reason.strip()
    assert all(len(line.rstrip()) <= 100 for line in result.stdout.splitlines())


def test_a_cut_prompt_is_said_on_stderr() -> None:
    generate("--prompt", "a lighthouse at dusk " * 10, key="order-cut1")
    cut = run("jobs", env={"COLUMNS": "100"})
    assert cut.exit_code == 0, cut.output
    assert "note: long prompts are cut with …; `--json` has them whole" in cut.stderr
    whole = run("jobs", env={"COLUMNS": "400"})
    assert "…" not in whole.stdout and "cut with" not in whole.stderr
