"""The commands end to end on the real backends, as an operator would run them.

`VIDEOGEN_DATABASE_URL` (psycopg) and `SUPABASE_URL` (the real supabase client over
real HTTP to the PostgREST-compatible stub) against a migrated Postgres, with the fal
simulator chosen explicitly. Balances and ledger rows are read straight from the
database afterwards.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.backends.conftest import backend_variables
from tests.support import pgcluster
from tests.support.processes import run_at_once
from videogen_cli.cli.main import app

pytestmark = pytest.mark.postgres

FAST = ["--interval", "0.01", "--max-interval", "0.02"]


class Env:
    """One backend, configured only through the environment, as users do."""

    def __init__(self, kind: str, dsn: str, env: dict[str, str]) -> None:
        self.kind, self.dsn, self.env = kind, dsn, env

    def run(self, *args: str, code: int = 0) -> dict[str, Any]:
        result = CliRunner().invoke(app, [*args, "--json"], env=self.env)
        assert result.exit_code == code, result.output
        lines = result.stdout.splitlines()
        assert len(lines) >= 1, result.output
        parsed: dict[str, Any] = json.loads(lines[-1])
        return parsed

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def balance(self, user: str) -> int:
        return int(
            self.sql("select balance from public.user_credits where user_id = %s", user)[0][0]
        )


@pytest.fixture(params=["postgres", "supabase"])
def env(request: pytest.FixtureRequest, pg_dsn: str, isolated_env: Any) -> Iterator[Env]:
    base = {
        "VIDEOGEN_HOME": str(isolated_env),
        "VIDEOGEN_PROVIDER": "simulator",
        "VIDEOGEN_SIM_SPEED": "1000",
    }
    with backend_variables(request.param, pg_dsn) as variables:
        yield Env(request.param, pg_dsn, {**base, **variables})
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []


def new_user(env: Env, credits: int) -> str:
    """Fund a new user the way an operator does: `videogen grant`."""
    user = str(uuid.uuid4())
    out = env.run("grant", "--user", user, "--credits", str(credits), "--reason", "test setup",
                  "--operator", "pytest", "--yes")  # fmt: skip
    assert (out["granted"], out["balance"]) == (credits, credits)
    assert env.sql(
        "select kind, delta, reason, operator from public.credit_ledger where user_id = %s", user
    ) == [("grant", credits, "test setup", "pytest")]
    return user


def gen(env: Env, user: str, key: str, *extra: str, code: int = 0) -> dict[str, Any]:
    return env.run(
        "generate", "--prompt", "a boat", "--duration", "4s", "--user", user,
        "--idempotency-key", key, *extra, code=code,
    )  # fmt: skip


def test_generate_replay_and_key_reuse(env: Env) -> None:
    user = new_user(env, 40)
    first = gen(env, user, "order-0001")
    assert (first["status"], first["credits_used"], first["balance"], first["replayed"]) == (
        "pending", 16, 24, False,
    )  # fmt: skip
    assert first["environment"] == {"backend": env.kind, "provider": "simulator"}
    again = gen(env, user, "order-0001")
    assert again == {**first, "replayed": True}
    refused = gen(env, user, "order-0001", "--duration", "8s", code=4)
    assert refused["error"]["code"] == "idempotency_key_reused"
    verdict = env.run("replay-key", "order-0001")
    assert (verdict["verdict"], verdict["balance_before"], verdict["balance_after"]) == (
        "idempotent", 24, 24,
    )  # fmt: skip
    assert env.balance(user) == 24
    assert env.sql("select kind, delta from public.credit_ledger where job_id is not null") == [
        ("charge", -16)
    ]


def test_insufficient_credits_writes_nothing(env: Env) -> None:
    user = new_user(env, 10)
    out = gen(env, user, "order-poor", code=4)
    assert out["error"]["code"] == "insufficient_credits"
    assert env.sql("select count(*) from public.video_jobs") == [(0,)]
    assert env.balance(user) == 10


def test_unknown_user_job_and_key_are_exit_3(env: Env) -> None:
    assert gen(env, str(uuid.uuid4()), "order-ghost", code=3)["error"]["code"] == "user_not_found"
    missing = str(uuid.uuid4())
    assert env.run("status", missing, code=3)["error"]["code"] == "job_not_found"
    assert env.run("replay-key", "never-seen-key", code=3)["error"]["code"] == "key_not_found"


def test_failed_job_is_refunded_once_and_refund_moves_credits_once(env: Env) -> None:
    user = new_user(env, 100)
    failing = gen(env, user, "order-fail", "--prompt", "boat sim:fail")["job_id"]
    result = CliRunner().invoke(app, ["watch", failing, *FAST, "--json"], env=env.env)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "failed"
    assert env.run("status", failing)["refunded_credits"] == 16
    assert env.balance(user) == 100

    done = gen(env, user, "order-done")["job_id"]
    assert CliRunner().invoke(app, ["watch", done, *FAST], env=env.env).exit_code == 0
    args = ("refund", done, "--reason", "blank video", "--operator", "alice", "--yes")
    first, second = env.run(*args), env.run(*args)
    assert (first["refunded_now"], first["balance"]) == (True, 100)
    assert (second["refunded_now"], second["balance"]) == (False, 100)
    assert env.run("refund", failing, "--reason", "again", "--yes")["refunded_now"] is False
    rows = env.sql(
        "select job_id::text, kind, delta, operator from public.credit_ledger"
        " where job_id is not null order by id"
    )
    assert rows == [
        (failing, "charge", -16, "videogen"),
        (failing, "refund", 16, "videogen"),
        (done, "charge", -16, "videogen"),
        (done, "refund", 16, "alice"),
    ]


def test_many_processes_with_one_key_charge_once(env: Env) -> None:
    user = new_user(env, 100)
    args = ("generate", "--prompt", "a boat", "--duration", "4s", "--user", user,
            "--idempotency-key", "order-many", "--json")  # fmt: skip
    outs = run_at_once(args, {**os.environ, **env.env}, 10)
    assert len({o["job_id"] for o in outs}) == 1
    assert sorted(o["replayed"] for o in outs) == [False] + [True] * 9
    assert env.balance(user) == 84
    assert env.sql("select count(*) from public.credit_ledger where kind = 'charge'") == [(1,)]
