"""`serve` on the real backends: Postgres (psycopg) and Supabase (the real supabase client
over HTTP to the PostgREST stub), configured through the environment as users do, with
the simulator chosen explicitly. Balances and ledger rows are read from the store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.conftest import (  # the session's throwaway Postgres and its databases
    backend_variables,
    pg_admin_dsn,
    pg_dsn,
    pg_pool,
    pg_template,
)
from tests.http.support import FN, Api, balance, grant, jobs_of, ledger, new_key, veo
from tests.support import pgcluster
from videogen_cli.config import load_settings
from videogen_cli.http.app import create_app
from videogen_cli.http.tokens import mint

__all__ = ["pg_admin_dsn", "pg_dsn", "pg_pool", "pg_template"]

pytestmark = pytest.mark.postgres

SECRET = "a-project-jwt-secret-of-32-chars-or-more"


@pytest.fixture(params=["postgres", "supabase"])
def served(
    request: pytest.FixtureRequest,
    pg_dsn: str,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Api, str]]:
    monkeypatch.setenv("VIDEOGEN_PROVIDER", "simulator")
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)
    with backend_variables(request.param, pg_dsn) as variables:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        assert settings.backend == request.param
        app = create_app(settings, log=lambda _: None)
        user = str(uuid.uuid4())
        grant(user, 40)
        try:
            yield Api(app, mint(SECRET, user, 600)), user
        finally:
            app.state.pool.close()
    assert pgcluster.postgres_invariant_problems(pg_dsn) == []


def test_generate_replay_status_and_refusals_on_a_real_backend(served: tuple[Api, str]) -> None:
    api, user = served
    health = api.request("GET", "/healthz").json()
    assert health["backend"] in ("postgres", "supabase") and health["provider"] == "simulator"
    key = new_key()
    first = api.generate(key, veo())
    assert first.status_code == 200, first.text
    job_id = first.json()["job_id"]
    replay = api.generate(key, {**veo(), "settings": {"duration": 4}})
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
    assert api.generate(key, veo("another boat")).status_code == 422
    for _ in range(200):
        state = api.status(job_id).json()
        if state["status"] == "completed":
            break
        time.sleep(0.02)
    assert state["status"] == "completed"
    refused = api.generate(new_key(), veo("sim:refuse a boat"))
    assert refused.status_code == 502
    assert (
        api.generate(new_key(), veo(), token=mint(SECRET, str(uuid.uuid4()), 60)).status_code == 402
    )
    poor = api.generate(new_key(), {**veo(), "settings": {"duration": "8s"}})
    assert poor.status_code == 402  # 24 left, 32 asked
    assert balance(user) == 24
    assert [(e.kind.value, e.delta) for e in ledger(user)] == [
        ("grant", 40),
        ("charge", -16),
        ("charge", -16),
        ("refund", 16),
    ]
    other = api.status(job_id, token=mint(SECRET, str(uuid.uuid4()), 60))
    assert other.status_code == 404


def test_twenty_concurrent_posts_with_one_key_on_a_real_backend(served: tuple[Api, str]) -> None:
    api, user = served
    key = new_key()
    call = ("POST", f"{FN}/generate-video", {"json": veo(), "headers": {"Idempotency-Key": key}})
    answers = api.many([call] * 20)
    assert {a.status_code for a in answers} <= {200, 409}
    assert len({a.content for a in answers if a.status_code == 200}) == 1
    assert balance(user) == 24 and len(jobs_of(user)) == 1
    assert [e.kind.value for e in ledger(user)] == ["grant", "charge"]
