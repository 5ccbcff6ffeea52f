"""`videogen serve` on the sandbox with the real fal adapter, against a fal queue over HTTP.

The held-out client's set-up: a sandbox for state and FAL_KEY + VIDEOGEN_FAL_QUEUE_URL
pointing at a fal queue (tests/support/fal_emulator.py: the simulator's protocol behind
a socket). The token is minted with PyJWT from the secret README "For the iOS team" names
(VIDEOGEN_HOME/jwt-secret), as a client of its own would.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest

from tests.http.support import (
    FN,
    SWIFT_HEADERS,
    Server,
    balance,
    ledger,
    new_key,
    serve_process,
    veo,
)
from tests.support.fal_emulator import SLOW_WORD, FalEmulator, Gate
from videogen_cli.catalog import DEMO_USER_ID

pytestmark = pytest.mark.slow

REPLAY = {"x-idempotent-replay": "true", "idempotent-replayed": "true"}


@pytest.fixture
def fal(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FalEmulator]:
    emulator = FalEmulator(isolated_env.parent / "fal-emulator.sqlite3", gate=Gate()).start()
    monkeypatch.setenv("FAL_KEY", "emulator-key-id:emulator-key-secret")
    monkeypatch.setenv("VIDEOGEN_FAL_QUEUE_URL", emulator.url)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def served(fal: FalEmulator) -> Iterator[Server]:
    with serve_process() as srv:
        yield srv


def own_token(home: Path, user_id: str = DEMO_USER_ID) -> str:
    secret = (home / "jwt-secret").read_text().strip()
    now = int(time.time())
    claims = {"sub": user_id, "aud": "authenticated", "iat": now, "exp": now + 600}
    return jwt.encode(claims, secret, algorithm="HS256")


def wait_terminal(client: httpx.Client, job_id: str, auth: dict[str, str]) -> dict[str, object]:
    for _ in range(300):
        answer = client.get(f"{FN}/get-video-status", params={"job_id": job_id}, headers=auth)
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_the_whole_flow_through_the_real_fal_adapter(
    served: Server, fal: FalEmulator, isolated_env: Path
) -> None:
    bearer = own_token(isolated_env)  # the secret file exists once serve has started
    auth = {**SWIFT_HEADERS, "Authorization": f"Bearer {bearer}"}
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        health = client.get("/healthz").json()
        assert health == {"status": "ok", "backend": "sandbox", "provider": "fal"}

        key = new_key()
        first = client.post(
            f"{FN}/generate-video", json=veo(), headers={**auth, "Idempotency-Key": key}
        )
        assert first.status_code == 200, first.text
        job_id = first.json()["job_id"]
        assert first.json() == {"job_id": job_id, "status": "pending", "credits_used": 16}
        # Same request, other key order and spacing: the first answer, byte for byte.
        respaced = json.dumps(
            {"settings": {"duration": "4s"}, "prompt": "a paper boat", "model_id": "veo3.1"},
            indent=3,
        )
        again = client.post(
            f"{FN}/generate-video", content=respaced, headers={**auth, "Idempotency-Key": key}
        )
        assert again.content == first.content
        assert {k: again.headers[k] for k in REPLAY} == REPLAY
        done = wait_terminal(client, job_id, auth)
        assert done["status"] == "completed"
        assert str(done["video_url"]).startswith("https://")

        refused_key = new_key()
        refused = client.post(
            f"{FN}/generate-video",
            json=veo("sim:refuse"),
            headers={**auth, "Idempotency-Key": refused_key},
        )
        assert refused.status_code == 502, refused.text
        assert refused.json()["error"]["code"] == "submission_failed"
        refused_job = refused.json()["job_id"]
        replayed = client.post(
            f"{FN}/generate-video",
            json=veo("sim:refuse"),
            headers={**auth, "Idempotency-Key": refused_key},
        )
        assert (replayed.status_code, replayed.content) == (502, refused.content)
        assert {k: replayed.headers[k] for k in REPLAY} == REPLAY
        state = client.get(f"{FN}/get-video-status", params={"job_id": refused_job}, headers=auth)
        assert state.json()["status"] == "failed"
        assert state.json()["refunded_credits"] == 16
    assert served.stop(signal.SIGTERM) == 0
    assert balance(DEMO_USER_ID) == 84
    assert [(e.kind.value, e.delta, e.job_id) for e in ledger(DEMO_USER_ID)] == [
        ("grant", 100, None),
        ("charge", -16, job_id),
        ("charge", -16, refused_job),
        ("refund", 16, refused_job),
    ]
    log = served.stderr()
    assert "Traceback" not in log
    for piece in (bearer[:12], bearer[100:112], bearer[-12:], "emulator-key-secret"):
        assert piece not in log


def test_a_slow_fal_submit_answers_409_to_its_key_and_holds_up_no_status_call(
    served: Server, fal: FalEmulator, isolated_env: Path
) -> None:
    auth = {"Authorization": f"Bearer {own_token(isolated_env)}"}
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        quick = client.post(
            f"{FN}/generate-video", json=veo(), headers={**auth, "Idempotency-Key": new_key()}
        )
        assert quick.status_code == 200
        key = new_key()
        slow_body = veo(f"{SLOW_WORD} a boat")
        answers: dict[str, httpx.Response] = {}

        def first() -> None:
            with httpx.Client(base_url=served.base_url, timeout=60) as own:
                answers["first"] = own.post(
                    f"{FN}/generate-video", json=slow_body, headers={**auth, "Idempotency-Key": key}
                )

        gate = fal.gate
        assert gate is not None
        thread = threading.Thread(target=first)
        thread.start()
        assert gate.arrived.wait(60)  # charged and at fal, not answered yet
        status = client.get(
            f"{FN}/get-video-status", params={"job_id": quick.json()["job_id"]}, headers=auth
        )
        assert status.status_code == 200
        busy = client.post(
            f"{FN}/generate-video", json=slow_body, headers={**auth, "Idempotency-Key": key}
        )
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "idempotency_key_in_use"
        assert busy.headers["retry-after"] == "1"
        gate.opened.set()
        thread.join(60)
        assert answers["first"].status_code == 200
        later = client.post(
            f"{FN}/generate-video", json=slow_body, headers={**auth, "Idempotency-Key": key}
        )
        assert later.content == answers["first"].content
        assert {k: later.headers[k] for k in REPLAY} == REPLAY
    assert served.stop(signal.SIGINT) == 0
    assert balance(DEMO_USER_ID) == 68


def test_twenty_clients_one_key_through_the_fal_adapter(
    served: Server, fal: FalEmulator, isolated_env: Path
) -> None:
    headers = {
        **SWIFT_HEADERS,
        "Authorization": f"Bearer {own_token(isolated_env)}",
        "Idempotency-Key": new_key(),
    }
    start = threading.Barrier(20)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=served.base_url, timeout=60) as client:
            start.wait(30)
            return client.post(f"{FN}/generate-video", json=veo(), headers=headers)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(post, range(20)))
    assert {a.status_code for a in answers} <= {200, 409}
    ok = [a for a in answers if a.status_code == 200]
    assert ok and len({a.content for a in ok}) == 1
    assert sum(1 for a in ok if "x-idempotent-replay" not in a.headers) <= 1
    assert all(
        {k: a.headers[k] for k in REPLAY} == REPLAY
        for a in ok
        if "x-idempotent-replay" in a.headers
    )
    assert [(e.kind.value, e.delta) for e in ledger(DEMO_USER_ID)] == [
        ("grant", 100),
        ("charge", -16),
    ]
    assert served.stop(signal.SIGTERM) == 0


def test_fal_unreachable_at_submission_is_502_refunded_and_status_keeps_the_stored_state(
    served: Server, fal: FalEmulator, isolated_env: Path
) -> None:
    auth = {"Authorization": f"Bearer {own_token(isolated_env)}"}
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        created = client.post(
            f"{FN}/generate-video", json=veo(), headers={**auth, "Idempotency-Key": new_key()}
        )
        assert created.status_code == 200
        job_id = created.json()["job_id"]
        fal.stop()  # the queue URL serve was given: nothing listens there any more
        status = client.get(f"{FN}/get-video-status", params={"job_id": job_id}, headers=auth)
        assert status.status_code == 200  # transient trouble: the stored state
        assert status.json()["status"] in ("pending", "processing")
        key = new_key()
        down = client.post(
            f"{FN}/generate-video", json=veo("b"), headers={**auth, "Idempotency-Key": key}
        )
        assert down.status_code == 502, down.text
        assert down.json()["error"]["code"] == "submission_failed"
        down_job = down.json()["job_id"]
        again = client.post(
            f"{FN}/generate-video", json=veo("b"), headers={**auth, "Idempotency-Key": key}
        )
        assert (again.status_code, again.content) == (502, down.content)
        assert {k: again.headers[k] for k in REPLAY} == REPLAY
    assert served.stop(signal.SIGTERM) == 0
    assert [(e.kind.value, e.delta, e.job_id) for e in ledger(DEMO_USER_ID)][-2:] == [
        ("charge", -16, down_job),
        ("refund", 16, down_job),
    ]
    assert balance(DEMO_USER_ID) == 84
