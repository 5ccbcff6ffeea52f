"""Refunds, grant keys and hostile input on Postgres and Supabase (README "Money rules").

The sandbox versions live in tests/test_hostile_input.py and
tests/test_refunds_and_grants.py; these run the same rules against a migrated Postgres,
directly (psycopg) and through the real supabase client over HTTP to the PostgREST stub,
reading balances and ledger rows straight from the database.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from tests.backends.conftest import SERVICE_KEY, backend_variables
from tests.support import pgcluster
from tests.support.processes import run_at_once
from tests.test_hostile_input import BALANCES, LEDGER, Rows, check_one, hostile_env, invocations
from videogen_cli.cli import money_cmd
from videogen_cli.cli.main import app

pytestmark = pytest.mark.postgres

FAST = ["--interval", "0.01", "--max-interval", "0.02"]


class Backend:
    """One real backend, configured only through the environment, as users do."""

    def __init__(self, kind: str, dsn: str, env: dict[str, str]) -> None:
        self.kind, self.dsn, self.env = kind, dsn, env

    def run(self, *args: str, code: int = 0) -> dict[str, Any]:
        result = CliRunner().invoke(app, [*args, "--json"], env=self.env)
        assert result.exit_code == code, result.output
        parsed: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
        return parsed

    # The Store protocol of tests/test_hostile_input.py.
    def snapshot(self) -> tuple[Rows, Rows]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(BALANCES).fetchall(), conn.execute(LEDGER).fetchall()

    def invariant_problems(self) -> list[str]:
        return pgcluster.postgres_invariant_problems(self.dsn)

    def new_user(self, credits: int) -> str:
        user = str(uuid.uuid4())
        self.run("grant", "--user", user, "--credits", str(credits), "--reason", "setup",
                 "--operator", "pytest", "--yes")  # fmt: skip
        return user

    def finished_job(self, user: str, prompt: str = "a boat", code: int = 0) -> str:
        out = self.run("generate", "--prompt", prompt, "--duration", "4s", "--user", user,
                       code=code)  # fmt: skip
        if code == 0:
            result = CliRunner().invoke(app, ["watch", out["job_id"], *FAST], env=self.env)
            assert result.exit_code == 0, result.output
        return str(out["job_id"])


@pytest.fixture(params=["postgres", "supabase"])
def backend(request: pytest.FixtureRequest, pg_dsn: str, isolated_env: Path) -> Iterator[Backend]:
    base = {
        "VIDEOGEN_HOME": str(isolated_env),
        "VIDEOGEN_PROVIDER": "simulator",
        "VIDEOGEN_SIM_SPEED": "1000",
    }
    with backend_variables(request.param, pg_dsn) as variables:
        yield Backend(request.param, pg_dsn, {**base, **variables})
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []


def test_hostile_invocations_on_real_backends(backend: Backend) -> None:
    """The property of tests/test_hostile_input.py, fewer examples: no exit 70, no hang,
    nothing moved by a refusal, the invariant kept, read back from Postgres."""
    user = backend.new_user(1000)
    targets = {
        "user": user,
        "done": backend.finished_job(user),
        "failed": backend.finished_job(user, "sim:refuse boat", code=1),
        "pending": backend.run(
            "generate", "--prompt", "sim:slow boat", "--duration", "4s", "--user", user
        )["job_id"],
    }
    base = {**backend.env, "VIDEOGEN_USER_ID": user}

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(args=invocations(targets), env=hostile_env)
    def one(args: list[str], env: dict[str, str]) -> None:
        check_one(backend, args, {**base, **env})

    one()


def test_refund_honesty_on_real_backends(backend: Backend) -> None:
    user = backend.new_user(100)
    failed = backend.finished_job(user, "sim:refuse boat", code=1)
    dry = backend.run("refund", failed, "--reason", "again", "--dry-run")
    assert (dry["refunded_now"], dry["refunded_credits"], dry["balance"]) == (False, 16, 100)
    done = backend.finished_job(user)
    dry = backend.run("refund", done, "--reason", "blank", "--credits", "10", "--dry-run")
    assert (dry["refunded_now"], dry["balance"], dry["dry_run"]) == (True, 94, True)
    assert pgcluster.ledger(backend.dsn, user)[-1] == ("charge", -16)
    backend.run("refund", done, "--reason", "blank", "--credits", "10", "--yes")
    before = backend.snapshot()
    for extra in (["--yes"], ["--dry-run"]):
        refused = backend.run("refund", done, "--reason", "the rest", *extra, code=4)
        assert refused["error"]["code"] == "already_refunded"
        assert "10" in refused["error"]["message"]
    assert backend.snapshot() == before


def test_grant_key_on_real_backends(backend: Backend) -> None:
    user = str(uuid.uuid4())
    args = ("grant", "--user", user, "--credits", "30", "--reason", "ci funding",
            "--idempotency-key", "ci-fund-pg-01", "--yes")  # fmt: skip
    first, second = backend.run(*args), backend.run(*args)
    assert (first["granted_now"], first["balance"]) == (True, 30)
    assert second == {**first, "granted_now": False}
    assert pgcluster.ledger(backend.dsn, user) == [("grant", 30)]


@pytest.mark.slow
def test_one_grant_key_from_many_processes_grants_once_on_postgres(backend: Backend) -> None:
    if backend.kind != "postgres":
        pytest.skip("one race per database is enough; supabase runs the same SQL function")
    user = str(uuid.uuid4())
    args = ("grant", "--user", user, "--credits", "7", "--reason", "ci funding",
            "--idempotency-key", "ci-race-pg-01", "--yes", "--json")  # fmt: skip
    outputs = run_at_once(args, {**os.environ, **backend.env}, count=6)
    assert sorted(o["granted_now"] for o in outputs) == [False] * 5 + [True]
    assert {o["balance"] for o in outputs} == {7}
    assert pgcluster.ledger(backend.dsn, user) == [("grant", 7)]


def test_the_prompt_names_the_database_and_no_secret(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = backend.new_user(100)
    done = backend.finished_job(user)
    monkeypatch.setattr(money_cmd, "_stdin_is_tty", lambda: True)
    monkeypatch.setattr(money_cmd, "_ask", lambda question: False)
    result = CliRunner().invoke(app, ["refund", done, "--reason", "blank"], env=backend.env)
    assert result.exit_code == 0, result.output
    if backend.kind == "postgres":
        info = psycopg.conninfo.conninfo_to_dict(backend.dsn)
        target = f"postgres {info['host']}:{info['port']}/{info['dbname']}"
    else:
        target = "supabase 127.0.0.1"
    assert f"  target:   {target}\n" in result.stderr
    assert "  balance:  84 -> 100\n" in result.stderr
    assert SERVICE_KEY not in result.output
    assert pgcluster.ledger(backend.dsn, user)[-1] == ("charge", -16)
