"""Issue 6's hostile-input reproductions, as real processes (argv and environment
carry raw bytes, as a shell passes $'\\xff'), on the sandbox, Postgres and Supabase.

Each invocation is refused with exit 2 (usage) or 5 (configuration): no exit 70, no
hang, no traceback, and no balance, ledger row or job changes. The ledger invariant is
read from the database afterwards. The processes run a few at a time to keep this short.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.backends.conftest import backend_variables
from tests.support import pgcluster

FF = "\udcff"  # os.fsencode gives the raw byte 0xff, as $'\xff' in a shell
AT_ONCE = 6


class Store:
    def __init__(self, kind: str, env: dict[str, str], home: Path, dsn: str | None) -> None:
        self.kind, self.env, self.home, self.dsn = kind, env, home, dsn

    def snapshot(self) -> tuple[Any, ...]:
        """Every balance, ledger row and job, as the database holds them."""
        queries = (
            "select user_id, balance from user_credits order by user_id",
            "select user_id, kind, delta, job_id from credit_ledger order by id",
            "select job_id, status, credits_used, refunded_credits from video_jobs order by job_id",
        )
        if self.dsn is None:
            import sqlite3

            con = sqlite3.connect(self.home / "sandbox.sqlite3")
            try:
                return tuple(
                    [tuple(map(str, r)) for r in con.execute(q).fetchall()] for q in queries
                )
            finally:
                con.close()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return tuple(
                [
                    tuple(map(str, r))
                    for r in conn.execute(q.replace(" from ", " from public.", 1)).fetchall()
                ]
                for q in queries
            )

    def problems(self) -> list[str]:
        if self.dsn is not None:
            return pgcluster.postgres_invariant_problems(self.dsn)
        return pgcluster.sqlite_invariant_problems(self.home / "sandbox.sqlite3")


@pytest.fixture(
    params=[
        "sandbox",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("supabase", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    home = tmp_path / "home"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_"))}
    clean.pop("SUPABASE_URL", None)
    clean.pop("SUPABASE_SERVICE_ROLE_KEY", None)
    base = {**clean, "VIDEOGEN_HOME": str(home), "VIDEOGEN_SIM_SPEED": "1000", "NO_COLOR": "1"}
    with ExitStack() as stack:
        dsn: str | None = None
        if request.param == "sandbox":
            env = base
        else:
            dsn = request.getfixturevalue("pg_dsn")
            variables = stack.enter_context(backend_variables(request.param, dsn))
            env = {**base, "VIDEOGEN_PROVIDER": "simulator", **variables}
        found = Store(request.param, env, home, dsn)
        yield found
        assert found.problems() == []


def start(env: dict[str, str], args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "videogen_cli", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )


def setup_job(store: Store, env: dict[str, str] | None = None) -> tuple[str, str]:
    env = env or store.env
    user = str(uuid.uuid4())
    grant = start(store.env, ["grant", "--user", user, "--credits", "100", "--reason", "setup",
                              "--operator", "pytest", "--yes"])  # fmt: skip
    assert grant.wait(60) == 0, grant.communicate()
    gen = start(env, ["generate", "--prompt", "a boat sim:slow", "--duration", "4s",
                      "--user", user, "--idempotency-key", "hostile-setup", "--json"])  # fmt: skip
    out, err = gen.communicate(timeout=60)
    assert gen.returncode == 0, err
    import json

    job_id: str = json.loads(out.splitlines()[-1])["job_id"]
    return user, job_id


def invocations(user: str, job: str) -> list[tuple[dict[str, str], list[str]]]:
    gen = ["generate", "--prompt", "a boat", "--duration", "4s", "--user", user,
           "--idempotency-key", f"hostile-{uuid.uuid4()}"]  # fmt: skip
    fal = {"FAL_KEY": "fal-test-key-0123456789abcdef", "VIDEOGEN_PROVIDER": "fal"}
    return [
        ({}, [*gen, "--watch", "--timeout", "0"]),
        ({}, [*gen, "--interval", "nan"]),
        ({}, [*gen, "--watch", "--interval", "nan"]),
        ({}, [*gen, "--watch", "--max-interval", "inf"]),
        ({}, [*gen, "--watch", "--timeout", "1e308"]),
        ({**fal, "VIDEOGEN_FAL_QUEUE_URL": "not a url"}, gen),
        ({**fal, "VIDEOGEN_FAL_QUEUE_URL": FF}, gen),
        ({**fal, "VIDEOGEN_FAL_QUEUE_URL": "http://[::1"}, gen),
        ({**fal, "FAL_KEY": FF}, gen),
        ({"VIDEOGEN_DATABASE_URL": FF}, gen),
        ({"VIDEOGEN_SUBMIT_GRACE_SECONDS": "nan"}, gen),
        ({"VIDEOGEN_SUBMIT_GRACE_SECONDS": "nan"}, ["reconcile"]),
        ({"VIDEOGEN_SUBMIT_GRACE_SECONDS": "1e308"}, ["status", job]),
        ({"VIDEOGEN_SIM_SPEED": "nan"}, gen),
        ({"VIDEOGEN_USER_ID": FF}, ["generate", "--prompt", "a boat", "--duration", "4s"]),
        ({}, ["watch", job, "--timeout", "nan"]),
        ({}, ["watch", job, "--timeout", "1e308"]),
        ({}, ["watch", job, "--interval", "0", "--timeout", "5"]),
        ({}, ["watch", job, "--factor", "inf"]),
        ({}, ["generate", "--prompt", f"{FF}a boat", "--duration", "4s", "--user", user]),
        ({}, [*gen[:-1], f"key-{FF}"]),
        ({}, [*gen, "--user", FF]),
        ({}, ["replay-key", FF]),
        ({}, ["grant", "--user", user, "--credits", "5", "--reason", FF, "--yes"]),
        (
            {},
            [
                "grant",
                "--user",
                user,
                "--credits",
                "5",
                "--reason",
                "ok",
                "--operator",
                FF,
                "--idempotency-key",
                "g-1",
                "--yes",
            ],
        ),
        ({}, ["grant", "--user", user, "--credits", "1e308", "--reason", "ok", "--yes"]),
        ({}, ["refund", job, "--reason", FF, "--yes"]),
        ({}, ["refund", job, "--reason", "ok", "--credits", "-3", "--yes"]),
        ({}, ["status", FF]),
        ({}, ["reconcile", "--older-than", "nan"]),
        ({}, ["reconcile", "--limit", "-1"]),
        ({}, ["reconcile", "--older-than", "1e308", "--dry-run"]),
    ]


def test_hostile_reproductions_are_refused_and_change_nothing(store: Store) -> None:
    user, job = setup_job(store)
    before = store.snapshot()
    cases = invocations(user, job)
    results: list[tuple[list[str], int, str]] = []
    for first in range(0, len(cases), AT_ONCE):
        batch = [
            (args, start({**store.env, **extra}, args))
            for extra, args in cases[first : first + AT_ONCE]
        ]
        for args, proc in batch:
            try:
                _, err = proc.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise AssertionError(f"hung: {args!r}") from None
            results.append((args, proc.returncode, err))
    bad = [
        (args, code, err[-300:])
        for args, code, err in results
        if code not in (2, 5) or "Traceback" in err
    ]
    assert bad == []
    assert store.snapshot() == before


def test_watch_with_tiny_intervals_polls_many_times_without_crashing(store: Store) -> None:
    """The 1024th poll overflowed `factor**attempt`; here a slow job is polled about as
    often (no stream, 0.01 s) until a short deadline: exit 6, never 70."""
    if store.kind != "sandbox":
        pytest.skip("the backoff is the same code on every store; once is enough")
    env = {**store.env, "VIDEOGEN_SIM_SPEED": "1"}  # sim:slow stays running for 10 minutes
    _, job = setup_job(store, env)
    before = store.snapshot()[:2]  # its status may move on (synced), money may not
    proc = start(env, ["watch", job, "--interval", "0.01", "--max-interval", "0.01",
                       "--timeout", "8", "--no-stream", "--json"])  # fmt: skip
    _, err = proc.communicate(timeout=90)
    assert (proc.returncode, "Traceback" in err) == (6, False), err
    assert store.snapshot()[:2] == before
