"""Refunds and grants as operators use them (README "Money rules").

- A dry run asks the store the same question as the refund and writes nothing: on a job
  already refunded it says `refunded_now: false` and shows nothing moving.
- A second refund after a partial one is refused (exit 4, naming the amount already
  refunded); after a full one it stays the exit-0 no-op.
- `grant --idempotency-key`: one key grants once, also from many processes at once.
- Every confirmation names the target database, the user and the balance before and
  after; Ctrl-C or Ctrl-D at the prompt exits 130 with nothing changed. The prompt tests
  drive the real command in a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.support.processes import run_at_once
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.cli import money_cmd
from videogen_cli.cli.main import app
from videogen_cli.config import load_settings

SANDBOX = {"backend": "sandbox", "provider": "simulator"}
FAST = ["--interval", "0.01", "--max-interval", "0.02"]


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def ledger(home: Path, user: str = DEMO_USER_ID) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(home / "sandbox.sqlite3")
    try:
        return con.execute(
            "select kind, job_id, delta, reason, operator from credit_ledger"
            " where user_id = ? order by id",
            (user,),
        ).fetchall()
    finally:
        con.close()


def balance(user: str = DEMO_USER_ID) -> int:
    return int(run_json("credits", "--user", user)["balance"])


def finished_job(key: str, prompt: str = "a paper boat") -> str:
    out = run_json("generate", "--prompt", prompt, "--duration", "4s", "--idempotency-key", key)
    assert run("watch", out["job_id"], *FAST).exit_code == 0
    return str(out["job_id"])


def failed_job(key: str) -> str:
    out = run_json(
        "generate", "--prompt", "sim:refuse boat", "--duration", "4s",
        "--idempotency-key", key, code=1,
    )  # fmt: skip
    return str(out["job_id"])


# --- honest dry runs ---------------------------------------------------------------------


def test_dry_run_of_a_refundable_job_shows_the_move_and_writes_nothing(
    isolated_env: Path,
) -> None:
    job = finished_job("order-dry-1")
    before = ledger(isolated_env)
    dry = run_json("refund", job, "--reason", "blank video", "--operator", "alice", "--dry-run")
    assert dry == {
        "job_id": job, "refunded_credits": 16, "refunded_now": True, "balance": 100,
        "reason": "blank video", "operator": "alice", "dry_run": True, "environment": SANDBOX,
    }  # fmt: skip
    human = run("refund", job, "--reason", "blank video", "--dry-run")
    assert human.exit_code == 0
    assert "dry run: would refund 16 credits (balance 84 -> 100); nothing was changed" in (
        human.stderr
    )
    assert (ledger(isolated_env), balance()) == (before, 84)


def test_dry_run_of_an_already_refunded_job_says_so_and_shows_nothing_moving(
    isolated_env: Path,
) -> None:
    failed = failed_job("order-dry-2")  # refunded automatically when it failed
    before = ledger(isolated_env)
    dry = run_json("refund", failed, "--reason", "again", "--operator", "bob", "--dry-run")
    assert dry["refunded_now"] is False
    assert (dry["refunded_credits"], dry["balance"], dry["dry_run"]) == (16, 100, True)
    assert dry["operator"] == "videogen"  # the refund on record, not the one asked for
    human = run("refund", failed, "--reason", "again", "--dry-run")
    assert human.exit_code == 0
    assert "already refunded (16 credits); nothing would move" in human.stderr
    assert "would refund" not in human.stderr
    assert (ledger(isolated_env), balance()) == (before, 100)


def test_dry_run_after_a_full_operator_refund_shows_nothing_moving(isolated_env: Path) -> None:
    job = finished_job("order-dry-3")
    run_json("refund", job, "--reason", "blank video", "--yes")
    dry = run_json("refund", job, "--reason", "blank video", "--dry-run")
    assert (dry["refunded_now"], dry["refunded_credits"], dry["balance"]) == (False, 16, 100)


# --- second refunds ---------------------------------------------------------------------


def test_a_second_refund_after_a_partial_one_is_refused_naming_the_amount(
    isolated_env: Path,
) -> None:
    job = finished_job("order-part-1")
    first = run_json("refund", job, "--reason", "half blank", "--credits", "10",
                     "--operator", "alice", "--yes")  # fmt: skip
    assert (first["refunded_now"], first["refunded_credits"], first["balance"]) == (True, 10, 94)
    after_first = ledger(isolated_env)
    for extra in (["--yes"], ["--dry-run"], ["--credits", "6", "--yes"]):
        refused = run_json("refund", job, "--reason", "the rest", *extra, code=4)
        assert refused["error"]["code"] == "already_refunded"
        assert "already refunded 10 of the 16 credits" in refused["error"]["message"]
    assert (ledger(isolated_env), balance()) == (after_first, 94)
    # The very same refund again (a retry after a lost answer) is the safe no-op.
    retry = run_json("refund", job, "--reason", "half blank", "--credits", "10",
                     "--operator", "alice", "--yes")  # fmt: skip
    assert (retry["refunded_now"], retry["balance"]) == (False, 94)
    assert ledger(isolated_env) == after_first


def test_a_second_refund_after_a_full_one_is_a_no_op_exit_0(isolated_env: Path) -> None:
    job = finished_job("order-full-1")
    run_json("refund", job, "--reason", "blank video", "--operator", "alice", "--yes")
    after_first = ledger(isolated_env)
    again = run_json("refund", job, "--reason", "other", "--operator", "bob", "--yes")
    assert (again["refunded_now"], again["refunded_credits"], again["balance"]) == (False, 16, 100)
    assert (again["reason"], again["operator"]) == ("blank video", "alice")
    human = run("refund", job, "--reason", "other", "--yes")
    assert human.exit_code == 0 and "already refunded: nothing moved" in human.stderr
    assert ledger(isolated_env) == after_first


def test_running_jobs_and_too_many_credits_are_refused_in_dry_runs_too(
    isolated_env: Path,
) -> None:
    running = run_json("generate", "--prompt", "sim:slow boat", "--duration", "4s")["job_id"]
    done = finished_job("order-many-1")
    before = ledger(isolated_env)
    for job, extra, code in (
        (running, [], "job_not_refundable"),
        (done, ["--credits", "17"], "refund_exceeds_credits"),
    ):
        for mode in ("--dry-run", "--yes"):
            out = run_json("refund", job, "--reason", "x", *extra, mode, code=4)
            assert out["error"]["code"] == code
    assert ledger(isolated_env) == before


# --- grants -------------------------------------------------------------------------------


def test_grant_with_an_idempotency_key_grants_once(isolated_env: Path) -> None:
    user = str(uuid.uuid4())
    args = ("grant", "--user", user, "--credits", "30", "--reason", "ci funding",
            "--operator", "ci", "--idempotency-key", "ci-fund-0001", "--yes")  # fmt: skip
    first = run_json(*args)
    assert first == {
        "user_id": user, "granted": 30, "granted_now": True, "balance": 30,
        "reason": "ci funding", "operator": "ci", "idempotency_key": "ci-fund-0001",
        "environment": SANDBOX,
    }  # fmt: skip
    second = run_json(*args)
    assert second == {**first, "granted_now": False}
    # Whatever else the repeat says, the key has granted: nothing moves.
    other = run_json("grant", "--user", user, "--credits", "99", "--reason", "other",
                     "--idempotency-key", "ci-fund-0001", "--yes")  # fmt: skip
    assert (other["granted_now"], other["granted"], other["balance"]) == (False, 30, 30)
    human = run(*args)
    assert human.exit_code == 0
    assert "key ci-fund-0001 granted before: nothing moved this time" in human.stderr
    assert ledger(isolated_env, user) == [("grant", None, 30, "ci funding", "ci")]
    # Without a key each call is a grant of its own.
    run_json("grant", "--user", user, "--credits", "5", "--reason", "top-up", "--yes")
    assert balance(user) == 35


def test_grant_defaults_to_the_demo_user_on_the_sandbox(isolated_env: Path) -> None:
    out = run_json("grant", "--credits", "5", "--reason", "demo", "--yes")
    assert (out["user_id"], out["balance"], out["idempotency_key"]) == (DEMO_USER_ID, 105, None)


@pytest.mark.slow
def test_one_grant_key_from_many_processes_at_once_grants_once(isolated_env: Path) -> None:
    assert run_json("credits")["balance"] == 100  # the sandbox exists before the race
    args = ("grant", "--credits", "7", "--reason", "ci funding", "--operator", "ci",
            "--idempotency-key", "ci-race-0001", "--yes", "--json")  # fmt: skip
    outputs = run_at_once(args, dict(os.environ), count=6)
    assert sorted(o["granted_now"] for o in outputs) == [False] * 5 + [True]
    assert {(o["granted"], o["balance"]) for o in outputs} == {(7, 107)}
    grants = [row for row in ledger(isolated_env) if row[3] == "ci funding"]
    assert grants == [("grant", None, 7, "ci funding", "ci")]


# --- confirmation prompts -----------------------------------------------------------------


def run_in_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run `videogen ARGS` on a pseudo-terminal, type `answer` at the prompt.

    Returns the exit code and everything the terminal showed (stdout and stderr).
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes videogen, with the terminal as its controlling tty
        try:
            os.execv(sys.executable, [sys.executable, "-m", "videogen_cli", *args])
        finally:
            os._exit(127)
    shown = b""
    answered = False
    quiet = 0.0
    while True:
        ready, _, _ = select.select([fd], [], [], 2)
        if not ready:
            quiet += 2
            assert quiet < 60, f"no output for 60 s; so far: {shown.decode(errors='replace')}"
            if answered and answer == b"\x03" and quiet % 6 == 0:
                # A SIGINT that lands after Python last checked for signals but before
                # input() blocks in read() only sets Python's flag and the read never
                # returns (a race in any Python prompt); a person presses Ctrl-C again.
                os.write(fd, answer)
            continue
        quiet = 0.0
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        if not answered and b"Proceed?" in shown:
            os.write(fd, answer)
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace").replace("\r", "")


def test_refund_prompt_names_target_user_and_balances_then_refunds(isolated_env: Path) -> None:
    job = finished_job("order-tty-1")
    code, shown = run_in_terminal(
        ["refund", job, "--reason", "blank video", "--operator", "alice"], b"y\n"
    )
    assert code == 0, shown
    assert f"Refund 16 credits for job {job}\n" in shown
    assert f"  target:   sandbox {isolated_env / 'sandbox.sqlite3'}\n" in shown
    assert f"  user:     {DEMO_USER_ID}\n" in shown
    assert "  balance:  84 -> 100\n" in shown
    assert "  operator: alice\n" in shown and "  reason:   blank video\n" in shown
    assert ledger(isolated_env)[-1] == ("refund", job, 16, "blank video", "alice")


def test_grant_prompt_names_balances_and_declining_changes_nothing(isolated_env: Path) -> None:
    assert run_json("credits")["balance"] == 100
    before = ledger(isolated_env)
    code, shown = run_in_terminal(
        ["grant", "--credits", "25", "--reason", "beta", "--idempotency-key", "tty-grant-01"],
        b"n\n",
    )
    assert code == 0, shown
    assert "Grant 25 credits\n" in shown
    assert f"  user:     {DEMO_USER_ID}\n" in shown and "  balance:  100 -> 125\n" in shown
    assert "idempotency key tty-grant-01: if it granted before, nothing moves" in shown
    assert "declined; nothing changed" in shown
    assert ledger(isolated_env) == before


@pytest.mark.parametrize(("key", "name"), [(b"\x03", "Ctrl-C"), (b"\x04", "Ctrl-D")])
def test_ctrl_c_or_ctrl_d_at_the_prompt_exits_130_with_nothing_changed(
    key: bytes, name: str, isolated_env: Path
) -> None:
    job = finished_job("order-tty-" + name)
    before = ledger(isolated_env)
    for args in (
        ["refund", job, "--reason", "blank video"],
        ["grant", "--credits", "5", "--reason", "beta"],
    ):
        code, shown = run_in_terminal(args, key)
        assert code == 130, shown
        assert "cancelled; nothing changed" in shown
        assert "Traceback" not in shown and "Aborted" not in shown
    assert ledger(isolated_env) == before


def test_cancelling_in_json_mode_prints_the_error_object(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    """The prompt seam (`_ask`) raising Abort is what typer does on Ctrl-C and Ctrl-D."""

    def abort(question: str) -> bool:
        raise typer.Abort()

    monkeypatch.setattr(money_cmd, "_stdin_is_tty", lambda: True)
    monkeypatch.setattr(money_cmd, "_ask", abort)
    out = run_json("grant", "--credits", "5", "--reason", "beta", code=130)
    assert out["error"]["code"] == "cancelled"
    assert out["error"]["message"] == "cancelled; nothing changed"
    assert balance() == 100


@pytest.mark.parametrize(
    ("env", "target"),
    [
        (
            {"VIDEOGEN_DATABASE_URL": "postgresql://app:s3cret@db.example.com:5433/prod"},
            "postgres db.example.com:5433/prod",
        ),
        (
            {"VIDEOGEN_DATABASE_URL": "host=10.0.0.5 port=6543 dbname=app password=s3cret"},
            "postgres 10.0.0.5:6543/app",
        ),
        (
            {
                "SUPABASE_URL": "https://abcd1234.supabase.co",
                "SUPABASE_SERVICE_ROLE_KEY": "s3cret-service-role-key",
            },
            "supabase abcd1234.supabase.co",
        ),
    ],
)
def test_the_target_names_host_and_database_never_a_secret(
    env: dict[str, str], target: str
) -> None:
    settings = load_settings({**env, "VIDEOGEN_PROVIDER": "simulator", "VIDEOGEN_HOME": "/x"})
    assert settings.target() == target
    assert "s3cret" not in settings.target()
