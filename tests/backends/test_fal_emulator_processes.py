"""Issue 6 through fal's protocol over real HTTP: `videogen` as real processes with
FAL_KEY and VIDEOGEN_FAL_QUEUE_URL pointing at tests/support/fal_emulator.py, on the
sandbox and on Postgres. The ledger invariant is read from the database after each test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import pgcluster
from tests.support.fal_emulator import FalEmulator
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.jobs import NOT_FOUND_LIMIT

FAL_KEY = "fal-test-key-0123456789abcdef"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[FalEmulator]:
    emu = FalEmulator(tmp_path / "emulator-sim.sqlite3").start()
    try:
        yield emu
    finally:
        emu.stop()


class Store:
    """One store, reached by processes configured only through the environment."""

    def __init__(self, kind: str, base: dict[str, str], home: Path, dsn: str | None) -> None:
        self.kind, self.base, self.home, self.dsn = kind, base, home, dsn

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_"))}
        env.pop("SUPABASE_URL", None)
        return {**env, **self.base, **extra}

    def ledger(self, user: str) -> list[tuple[str, int]]:
        if self.dsn is not None:
            return pgcluster.ledger(self.dsn, user)
        import sqlite3

        con = sqlite3.connect(self.home / "sandbox.sqlite3")
        try:
            rows = con.execute(
                "select kind, delta from credit_ledger where user_id = ? order by id", (user,)
            ).fetchall()
        finally:
            con.close()
        return [(str(k), int(d)) for k, d in rows]

    def problems(self) -> list[str]:
        if self.dsn is not None:
            return pgcluster.postgres_invariant_problems(self.dsn)
        return pgcluster.sqlite_invariant_problems(self.home / "sandbox.sqlite3")


@pytest.fixture(params=["sandbox", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    home = tmp_path / "machine-a"
    base = {"VIDEOGEN_HOME": str(home), "VIDEOGEN_SIM_SPEED": "1000", "NO_COLOR": "1"}
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("pg_dsn")
        found = Store("postgres", {**base, "VIDEOGEN_DATABASE_URL": dsn}, home, dsn)
    else:
        found = Store("sandbox", base, home, None)
    yield found
    assert found.problems() == []


def run(env: dict[str, str], *args: str, code: int = 0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "videogen_cli", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines, proc.stderr
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def fal_env(store: Store, emulator: FalEmulator) -> dict[str, str]:
    return store.env(FAL_KEY=FAL_KEY, VIDEOGEN_FAL_QUEUE_URL=emulator.url)


def funded_user(store: Store, env: dict[str, str], credits: int = 40) -> str:
    if store.kind == "sandbox":
        run(env, "credits")  # creates and seeds the sandbox
        return DEMO_USER_ID
    user = str(uuid.uuid4())
    run(env, "grant", "--user", user, "--credits", str(credits), "--reason", "setup",
        "--operator", "pytest", "--yes")  # fmt: skip
    return user


def generate(env: dict[str, str], user: str, prompt: str, *extra: str) -> dict[str, Any]:
    return run(
        env, "generate", "--prompt", prompt, "--duration", "4s", "--user", user,
        "--idempotency-key", f"k-{uuid.uuid4()}", *extra,
    )  # fmt: skip


FAST = ("--interval", "0.01", "--max-interval", "0.02")


def test_a_job_through_the_emulator_completes_with_a_video(
    store: Store, emulator: FalEmulator
) -> None:
    env = fal_env(store, emulator)
    user = funded_user(store, env)
    before = store.ledger(user)
    job = generate(env, user, "a boat at dawn", "--watch", *FAST)
    assert (job["status"], job["credits_used"]) == ("completed", 16)
    assert job["video_url"]
    assert emulator.count("POST", "/fal-ai/veo3.1") == 1  # one submit, to the model's endpoint
    status = run(env, "status", job["job_id"])
    assert (status["status"], status["video_url"]) == ("completed", job["video_url"])
    summary = run(env, "reconcile")
    assert summary["seen"] == 0
    assert store.ledger(user) == [*before, ("charge", -16)]


def test_other_providers_show_the_stored_job_and_never_refund_it(
    store: Store, emulator: FalEmulator
) -> None:
    env = fal_env(store, emulator)
    user = funded_user(store, env)
    before = store.ledger(user)
    job = generate(env, user, "a boat sim:slow")
    stored = run(env, "status", job["job_id"], "--no-sync")
    stored.pop("environment", None)  # the sandbox names the reader's backend and provider
    simulator_env = store.env(**({"VIDEOGEN_PROVIDER": "simulator"} if store.dsn else {}))
    other_url_env = store.env(FAL_KEY=FAL_KEY, VIDEOGEN_FAL_QUEUE_URL="http://127.0.0.1:9")
    # The simulator would answer 404: more reads than the not-found rule needs.
    for other, reads in ((simulator_env, NOT_FOUND_LIMIT + 1), (other_url_env, 1)):
        for _ in range(reads):
            out = run(other, "status", job["job_id"])
            assert out.pop("sync_reason")
            # `environment` describes the process that reads, the rest is the stored job.
            out.pop("environment", None)
            assert out == {**stored, "synced": False}
        summary = run(other, "reconcile")
        assert (summary["seen"], summary["skipped_other_provider"]) == (1, 1)
    assert store.ledger(user) == [*before, ("charge", -16)]
    # Its own provider still follows it (to the end: sim:slow is 10 minutes at 1000x).
    own = run(env, "watch", job["job_id"], *FAST, "--timeout", "60")
    assert (own["status"], own["refunded_credits"]) == ("completed", 0)
    assert store.ledger(user) == [*before, ("charge", -16)]


def test_a_404_once_then_normal_completes_without_refund(
    store: Store, emulator: FalEmulator
) -> None:
    env = fal_env(store, emulator)
    user = funded_user(store, env)
    before = store.ledger(user)
    job = generate(env, user, "a boat sim:lost-once", "--watch", *FAST)
    assert job["status"] == "completed"
    assert emulator.count("GET", "/status", 404) == 1, emulator.requests
    assert store.ledger(user) == [*before, ("charge", -16)]


def test_a_404_always_fails_and_refunds_exactly_once_quoting_fal(
    store: Store, emulator: FalEmulator
) -> None:
    env = fal_env(store, emulator)
    user = funded_user(store, env)
    before = store.ledger(user)
    job = generate(env, user, "a boat sim:lost")
    dry = run(env, "reconcile", "--dry-run")
    assert [(j["job_id"], j["action"]) for j in dry.pop("jobs")] == [(job["job_id"], "would_sync")]
    assert (dry["dry_run"], dry["seen"], dry["would_sync"], dry["would_refund_stranded"]) == (
        True, 1, 1, 0,
    )  # fmt: skip
    assert emulator.count("GET", "/status") == 0  # a dry run asks nobody
    statuses = [run(env, "status", job["job_id"])["status"] for _ in range(NOT_FOUND_LIMIT - 1)]
    assert statuses == ["pending"] * (NOT_FOUND_LIMIT - 1)
    # Then several reconcile processes at once through the emulator: one refund.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "videogen_cli", "reconcile", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(3)
    ]  # fmt: skip
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        summaries.append(json.loads(out.splitlines()[-1]))
    assert sum(s["failed_and_refunded"] for s in summaries) == 1
    for _ in range(2):
        final = run(env, "status", job["job_id"])
        assert (final["status"], final["refunded_credits"]) == ("failed", 16)
    assert "404" in final["error"] or "not found" in final["error"].lower()
    assert store.ledger(user) == [*before, ("charge", -16), ("refund", 16)]


def test_429_with_retry_after_is_honoured_and_the_job_completes(
    store: Store, emulator: FalEmulator
) -> None:
    env = fal_env(store, emulator)
    user = funded_user(store, env)
    before = store.ledger(user)
    job = generate(env, user, "a boat sim:no-stream")
    emulator.knobs.status_429 = 1
    out = run(env, "watch", job["job_id"], *FAST, "--timeout", "60")
    assert out["status"] == "completed"
    assert emulator.count("GET", "/status", 429) == 1
    assert store.ledger(user) == [*before, ("charge", -16)]


def test_submit_5xx_without_request_id_is_retried_and_with_one_is_followed(
    store: Store, emulator: FalEmulator
) -> None:
    env = fal_env(store, emulator)
    user = funded_user(store, env)
    before = store.ledger(user)
    emulator.knobs.submit_errors = [(503, None)]
    job = generate(env, user, "a boat", "--watch", *FAST)
    assert job["status"] == "completed"
    # fal named a request it may be running: followed, never refunded on the spot; it
    # is unknown to fal here, so the not-found rule refunds it once, after repeats.
    emulator.knobs.submit_errors = [(500, "0b7a6f1e-0000-4000-8000-000000000001")]
    named = generate(env, user, "a boat")
    assert named["status"] == "pending"
    assert store.ledger(user) == [*before, ("charge", -16), ("charge", -16)]
    for _ in range(NOT_FOUND_LIMIT + 1):
        last = run(env, "status", named["job_id"])
    assert (last["status"], last["refunded_credits"]) == ("failed", 16)
    assert store.ledger(user) == [*before, ("charge", -16), ("charge", -16), ("refund", 16)]
