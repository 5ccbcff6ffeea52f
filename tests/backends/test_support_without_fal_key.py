"""Support staff on a real backend need no fal key: only commands that call fal ask for it.

A job is made and finished with the simulator chosen on purpose; then FAL_KEY and
VIDEOGEN_PROVIDER are gone, as on a support agent's machine, and the commands that only
read or move credits run against the same database. The call log is checked on the real
stores too: one line per SQL function, secrets (the service role key) never in it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.backends.conftest import SERVICE_KEY, backend_variables
from tests.backends.test_cli_on_backends import Env
from videogen_cli.cli.main import app

pytestmark = pytest.mark.postgres

FAST = ["--interval", "0.01", "--max-interval", "0.02"]


@pytest.fixture(params=["postgres", "supabase"])
def support(request: pytest.FixtureRequest, pg_dsn: str, isolated_env: Path) -> Iterator[Env]:
    base = {"VIDEOGEN_HOME": str(isolated_env), "VIDEOGEN_SIM_SPEED": "1000"}
    with backend_variables(request.param, pg_dsn) as variables:
        yield Env(request.param, pg_dsn, {**base, **variables})


def finished_job(env: Env, user: str) -> str:
    simulated = Env(env.kind, env.dsn, {**env.env, "VIDEOGEN_PROVIDER": "simulator"})
    out = simulated.run("generate", "-p", "a boat", "--duration", "4s", "--user", user,
                        "--watch", *FAST)  # fmt: skip
    assert out["status"] == "completed"
    return str(out["job_id"])


def test_support_commands_work_without_fal_key_and_fal_commands_ask_for_it(
    support: Env,
) -> None:
    user = str(uuid.uuid4())
    grant = support.run("grant", "--user", user, "--credits", "40", "--reason", "setup",
                        "--operator", "alice", "--yes")  # fmt: skip
    assert grant["balance"] == 40
    job_id = finished_job(support, user)

    refund = support.run("refund", job_id, "--reason", "blank video", "--operator", "bob", "--yes")
    assert (refund["refunded_now"], refund["balance"]) == (True, 40)
    assert support.run("credits", "--user", user)["balance"] == 40
    assert [j["job_id"] for j in support.run("jobs", "--user", user)["jobs"]] == [job_id]
    assert support.run("models")["models"]
    assert support.run("status", job_id)["status"] == "completed"  # finished: fal not asked
    assert "sql" in support.run("db", "sql")
    assert support.run("config")["warnings"][0]["code"] == "missing_credentials"

    refused = support.run("generate", "-p", "a boat", "--duration", "4s", "--user", user, code=5)
    assert refused["error"] == {
        "code": "missing_credentials",
        "message": f"the {support.kind} backend is configured but FAL_KEY is not set",
        "hint": "export FAL_KEY, or VIDEOGEN_PROVIDER=simulator to use the local simulator "
        "against this real database on purpose",
    }
    assert support.balance(user) == 40  # refused before any charge


def test_human_output_names_the_database_and_fal_without_secrets(support: Env) -> None:
    env = {**support.env, "FAL_KEY": "fal-id:RECOGNISABLE-FAL-SECRET"}
    result = CliRunner().invoke(app, ["models"], env=env)
    assert result.exit_code == 0, result.output
    note = result.stderr.splitlines()[0]
    if support.kind == "supabase":
        assert note == "note: supabase project 127.0.0.1, fal at https://queue.fal.run"
    else:
        words = dict(w.split("=", 1) for w in support.dsn.split())  # pgcluster's libpq form
        assert note == (
            f"note: postgres database {words['host']}:{words['port']}/{words['dbname']}, "
            "fal at https://queue.fal.run"
        )
    for secret in ("RECOGNISABLE", SERVICE_KEY, "password"):
        assert secret not in result.output


def test_the_call_log_names_each_sql_function_and_never_the_key(
    support: Env, tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    env = {**support.env, "VIDEOGEN_LOG": str(log), "VIDEOGEN_LOG_FORMAT": "json"}
    user = str(uuid.uuid4())
    result = CliRunner().invoke(app, ["credits", "--user", user, "--json"], env=env)
    assert result.exit_code == 3, result.output
    text = log.read_text()
    assert SERVICE_KEY not in text
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    assert [(ln["event"], ln["backend"], ln["call"], ln["status"]) for ln in lines] == [
        ("store", support.kind, "videogen_get_balance", "ok")
    ]
