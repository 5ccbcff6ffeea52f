"""`videogen smoke --endpoint` against implementations of the app's endpoints built here:
a correct one, and ones broken the ways a real implementation breaks. Smoke must pass
the first and fail each of the others, naming the check that caught it."""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path

import pytest

from tests.smoke.fake_endpoints import SECRET, Breakage, FakeBackend, serving, token
from tests.smoke.harness import smoke
from videogen_cli.core.smoke.results import CHECK_NAMES

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
USER = "3b0c1d7e-5a1f-4c8e-9d2a-7f6e5d4c3b2a"


@pytest.fixture
def with_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Smoke knows the endpoint's JWT secret, so it can mint a user with no credits."""
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)


def test_a_correct_implementation_passes(tmp_path: Path, with_secret: None) -> None:
    backend = FakeBackend()
    backend.funded_users.add(USER)
    with serving(backend) as url:
        run = smoke(tmp_path, "--endpoint", url, "--token", token(USER), "--json")
    assert run.exit_code == 0, run.stdout
    out = run.json()
    assert out["passed"] is True
    assert out["mode"] == "http"
    assert out["target"] == url
    assert out["user_id"] == USER
    assert out["environment"] == {"backend": "fake", "provider": "simulator"}
    statuses = {c["name"]: c["status"] for c in out["checks"]}
    assert statuses == {
        **dict.fromkeys(CHECK_NAMES, "passed"),
        "refund_once_and_invariant": "skipped",
    }
    messages = {c["name"]: c["message"] for c in out["checks"]}
    assert "the configured backend is not the endpoint's" in messages["refund_once_and_invariant"]
    assert "X-Idempotent-Replay: true" in messages["replay_same_job"]
    assert "balances not checked" in messages["replay_same_job"]
    assert "HTTP 402" in messages["insufficient_credits_refused"]
    # What it spent: the completed job (4 credits); the failed one came back.
    assert backend.balances[USER] == 100 - 4
    assert len(backend.jobs) == 2


def test_without_the_jwt_secret_the_no_credits_check_is_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    backend = FakeBackend()
    backend.funded_users.add(USER)
    with serving(backend) as url:
        run = smoke(tmp_path, "--endpoint", url, "--token", token(USER))
    assert run.exit_code == 0, run.stdout
    status, message = run.cases()["insufficient_credits_refused"]
    assert status == "skipped"
    assert message == (
        "no token for a user without credits: the endpoint's JWT secret is not known here "
        "(set SUPABASE_JWT_SECRET)"
    )


def test_without_the_jwt_secret_an_endpoint_taking_any_token_still_has_credits_checked(
    tmp_path: Path,
) -> None:
    """The user without credits gets a token signed with a throwaway secret: refused by an
    endpoint that checks signatures (the skip above), taken by one that does not."""
    backend = FakeBackend(breakage=Breakage(any_token=True, charges_without_credits=True))
    backend.funded_users.add(USER)
    with serving(backend) as url:
        run = smoke(tmp_path, "--endpoint", url, "--token", token(USER))
    assert run.exit_code == 1, run.stdout
    assert run.failed() == ["insufficient_credits_refused"]
    assert "got HTTP 200" in run.cases()["insufficient_credits_refused"][1]
    # The same endpoint with the credit check in place passes it.
    backend = FakeBackend(breakage=Breakage(any_token=True))
    backend.funded_users.add(USER)
    with serving(backend) as url:
        run = smoke(tmp_path, "--endpoint", url, "--token", token(USER))
    assert run.exit_code == 0, run.stdout
    assert run.cases()["insufficient_credits_refused"][0] == "passed"


BROKEN = [
    pytest.param(
        Breakage(new_job_on_replay=True),
        ["key_reuse_refused", "replay_same_job"],
        {"replay_same_job": "a new job", "key_reuse_refused": "a new job"},
        id="new-job-on-every-replay",
    ),
    pytest.param(
        Breakage(no_replay_header=True),
        ["replay_same_job"],
        {
            "replay_same_job": "the replay is not marked (neither X-Idempotent-Replay nor "
            "Idempotent-Replayed: true among the headers)"
        },
        id="replay-never-marked",
    ),
    pytest.param(
        Breakage(no_refund=True),
        ["failure_refunded_once"],
        {"failure_refunded_once": "got refunded_credits 0"},
        id="failed-job-never-refunded",
    ),
    pytest.param(
        Breakage(never_completes=True),
        ["completes_with_video", "failure_refunded_once"],
        {
            "completes_with_video": "completed with a video URL within 0.3 s; still pending",
            "failure_refunded_once": "still pending (queue position 0) at the deadline",
        },
        id="never-completes",
    ),
    pytest.param(
        Breakage(replay_shows_current_state=True),
        ["replay_same_job"],
        {
            "replay_same_job": "got a body other than the first answer's: queue_position 0 "
            "added; status 'processing' instead of 'pending'"
        },
        id="replay-answers-the-job-as-it-is-now",
    ),
    pytest.param(
        Breakage(replay_headers=("X-Idempotent-Replay",)),
        ["replay_same_job"],
        {
            "replay_same_job": "the replay is marked only by X-Idempotent-Replay: true "
            "(Idempotent-Replayed: true missing)"
        },
        id="replay-marked-with-the-plan-header-only",
    ),
    pytest.param(
        Breakage(replay_headers=("Idempotent-Replayed",)),
        ["replay_same_job"],
        {
            "replay_same_job": "the replay is marked only by Idempotent-Replayed: true "
            "(X-Idempotent-Replay: true missing)"
        },
        id="replay-marked-with-the-stripe-header-only",
    ),
    pytest.param(
        Breakage(crash_on_replay=True),
        ["replay_same_job"],
        {
            "replay_same_job": "POST /functions/v1/generate-video: the connection closed "
            "without a valid answer (RemoteProtocolError"
        },
        id="replay-crashes-the-handler",
    ),
    pytest.param(
        Breakage(charges_without_credits=True),
        ["insufficient_credits_refused"],
        {
            "insufficient_credits_refused": "to be HTTP 402 insufficient_credits for a job of 4 "
            "credits; got HTTP 200"
        },
        id="no-credit-check",
    ),
]


@pytest.mark.parametrize(("breakage", "failing", "says"), BROKEN)
def test_a_broken_implementation_fails_the_check_that_catches_it(
    tmp_path: Path,
    with_secret: None,
    breakage: Breakage,
    failing: list[str],
    says: dict[str, str],
) -> None:
    backend = FakeBackend(breakage=breakage)
    backend.funded_users.add(USER)
    with serving(backend) as url:
        # A short per-check deadline: a job that never completes fails, never hangs.
        run = smoke(tmp_path, "--endpoint", url, "--token", token(USER), "--check-timeout", "0.3")
    assert run.exit_code == 1, run.stdout
    assert run.failed() == failing
    cases = run.cases()
    for name, text in says.items():
        assert text in cases[name][1], cases[name]
    assert "smoke FAILED" in run.stdout.splitlines()[-1]


def test_an_endpoint_that_cannot_be_told_to_fail_skips_the_failure_check(
    tmp_path: Path, with_secret: None
) -> None:
    # No /healthz (like the deployed Edge Functions): smoke tries the sandbox word.
    backend = FakeBackend(provider=None, breakage=Breakage(fail_word_ignored=True))
    backend.funded_users.add(USER)
    with serving(backend) as url:
        run = smoke(tmp_path, "--endpoint", url, "--token", token(USER))
    assert run.exit_code == 0, run.stdout
    status, message = run.cases()["failure_refunded_once"]
    assert status == "skipped"
    assert message.startswith("the provider cannot be told to fail: the `sim:fail` job ")


def test_an_endpoint_on_real_fal_needs_yes_and_then_spends_one_job(
    tmp_path: Path, with_secret: None
) -> None:
    backend = FakeBackend(provider="fal")
    backend.funded_users.add(USER)
    with serving(backend) as url:
        refused = smoke(tmp_path, "--endpoint", url, "--token", token(USER))
        assert refused.exit_code == 2
        assert "will spend 1 job(s) of fake-t2v (4 s each), 4 credits" in refused.stderr
        assert backend.jobs == {}
        agreed = smoke(tmp_path, "--endpoint", url, "--token", token(USER), "--yes")
    assert agreed.exit_code == 0, agreed.stdout
    assert agreed.cases()["failure_refunded_once"] == (
        "skipped",
        "the provider (real fal) cannot be told to fail; no paid job was spent on it",
    )
    assert len(backend.jobs) == 1


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def test_an_unreachable_endpoint_exits_5(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = smoke(tmp_path, "--endpoint", url, "--token", token(USER), "--json")
    assert run.exit_code == 5
    error = run.json()["error"]
    assert error["code"] == "target_unreachable"
    assert url in error["message"]
    # CI still gets a report naming every check and why none ran.
    cases = run.cases()
    assert list(cases) == list(CHECK_NAMES)
    assert all(status == "failed" and "not run: target unreachable" in message
               for status, message in cases.values())  # fmt: skip


def test_a_token_the_endpoint_refuses_fails_the_checks_with_what_came_back(
    tmp_path: Path,
) -> None:
    backend = FakeBackend()
    with serving(backend) as url:
        bad = token(str(uuid.uuid4()), secret="not-the-endpoint-secret-0123456789abcdef")
        run = smoke(tmp_path, "--endpoint", url, "--token", bad)
    assert run.exit_code == 1
    assert "create_pending" in run.failed()
    assert "got HTTP 401" in run.cases()["create_pending"][1]


@pytest.mark.parametrize("word", ["PENDING", "queued"])
def test_a_status_the_job_object_never_has_fails_the_checks_quoting_it(
    tmp_path: Path, with_secret: None, word: str
) -> None:
    """Statuses come back as text; one that is not exactly a job status (README "For the
    iOS team": pending, processing, completed, failed) is never taken for one."""
    backend = FakeBackend(breakage=Breakage(status_word=word))
    backend.funded_users.add(USER)
    with serving(backend) as url:
        run = smoke(tmp_path, "--endpoint", url, "--token", token(USER), "--check-timeout", "0.3")
    assert run.exit_code == 1, run.stdout
    assert run.failed() == ["completes_with_video", "create_pending", "failure_refunded_once"]
    messages = {name: re.sub(UUID, "<job>", text) for name, (_, text) in run.cases().items()}
    assert messages["create_pending"] == (
        f"expected job <job> pending with 4 credits charged; got status {word!r} instead of "
        "'pending'"
    )
    assert messages["completes_with_video"] == (
        f"expected job <job> completed with a video URL within 0.3 s; still {word} at the "
        "check's deadline"
    )
    assert messages["failure_refunded_once"] == (
        f"expected job <job> (`sim:fail`) failed and refunded within 0.3 s; still {word} at "
        "the deadline"
    )
