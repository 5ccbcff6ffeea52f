"""`videogen smoke` directly against the real backends: Postgres, and Supabase through
the real supabase client and the PostgREST stub (simulated fal, on purpose)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.backends.conftest import backend_variables
from tests.smoke.harness import smoke
from tests.support import pgcluster
from videogen_cli.core.smoke.checks import smoke_user_ids
from videogen_cli.core.smoke.results import CHECK_NAMES

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres", "supabase"])
def configured(
    request: pytest.FixtureRequest, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("VIDEOGEN_PROVIDER", "simulator")
    with backend_variables(request.param, pg_dsn) as variables:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        yield pg_dsn


def test_smoke_passes_directly_on_a_real_backend_and_funds_once(
    configured: str, tmp_path: Path
) -> None:
    for _ in range(2):  # a CI job retried with the same run id
        run = smoke(tmp_path, "--run-id", "ci-pg-7")
        assert run.exit_code == 0, run.stdout + run.stderr
        assert run.cases() == dict.fromkeys(CHECK_NAMES, ("passed", ""))
    funded, poor = smoke_user_ids("ci-pg-7")
    with psycopg.connect(configured) as con:
        grants = con.execute(
            "select user_id::text, delta, operator from public.credit_ledger"
            " where kind = 'grant' order by delta"
        ).fetchall()
    assert grants == [(poor, 1, "videogen-smoke"), (funded, 12, "videogen-smoke")]
    assert pgcluster.postgres_invariant_problems(configured) == []
