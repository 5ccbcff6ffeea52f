"""A real `videogen serve` process on a free port, called over TCP with httpx: what the iOS
developer and the held-out client see, signals and the log included."""

from __future__ import annotations

import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.http.support import (
    FN,
    SWIFT_HEADERS,
    Server,
    balance,
    jobs_of,
    ledger,
    new_key,
    token,
    veo,
    videogen,
)
from videogen_cli.catalog import DEMO_USER_ID

pytestmark = pytest.mark.slow

REPLAY = {"x-idempotent-replay": "true", "idempotent-replayed": "true"}


def test_the_server_answers_over_http_and_stops_on_sigterm_with_exit_0(server: Server) -> None:
    bearer = token()
    auth = {**SWIFT_HEADERS, "Authorization": f"Bearer {bearer}"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        health = client.get("/healthz")
        assert health.json() == {"status": "ok", "backend": "sandbox", "provider": "simulator"}
        doc = client.get(f"{FN}/openapi.json").json()
        assert doc["openapi"].startswith("3.1")
        key = new_key()
        first = client.post(
            f"{FN}/generate-video", json=veo(), headers={**auth, "Idempotency-Key": key}
        )
        assert first.status_code == 200, first.text
        job_id = first.json()["job_id"]
        again = client.post(
            f"{FN}/generate-video", json=veo(), headers={**auth, "Idempotency-Key": key}
        )
        assert again.content == first.content
        assert {k: again.headers[k] for k in REPLAY} == REPLAY
        for _ in range(200):
            status = client.get(f"{FN}/get-video-status", params={"job_id": job_id}, headers=auth)
            if status.json()["status"] == "completed":
                break
            time.sleep(0.02)
        assert status.json()["status"] == "completed"
        preflight = client.options(f"{FN}/generate-video")
        assert preflight.status_code == 204
    assert server.stop(signal.SIGTERM) == 0
    log = server.stderr()
    assert "Traceback" not in log
    assert bearer not in log and bearer.split(".")[2] not in log
    assert log.rstrip().endswith("videogen serve: stopped (SIGTERM)")
    assert re.search(
        rf"POST /functions/v1/generate-video 200 \d+ms user={DEMO_USER_ID} job={job_id} "
        rf"key={key}\n",
        log,
    )
    assert balance(DEMO_USER_ID) == 84


def test_sigint_stops_it_cleanly(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
    assert server.stop(signal.SIGINT) == 0
    log = server.stderr()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert log.rstrip().endswith("videogen serve: stopped (SIGINT)")


def test_twenty_clients_one_key_give_one_job_and_one_charge(server: Server) -> None:
    bearer = token()
    key = new_key()
    headers = {**SWIFT_HEADERS, "Authorization": f"Bearer {bearer}", "Idempotency-Key": key}
    start = threading.Barrier(20)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            start.wait(30)
            return client.post(f"{FN}/generate-video", json=veo(), headers=headers)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(post, range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 409}, statuses
    ok = [a for a in answers if a.status_code == 200]
    assert ok and len({a.content for a in ok}) == 1
    assert sum(1 for a in ok if "x-idempotent-replay" not in a.headers) <= 1
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.json()["error"]["code"] == "idempotency_key_in_use"
    assert balance(DEMO_USER_ID) == 84
    assert [(e.kind.value, e.delta) for e in ledger(DEMO_USER_ID)] == [
        ("grant", 100),
        ("charge", -16),
    ]
    assert jobs_of(DEMO_USER_ID) == [ok[0].json()["job_id"]]
    assert server.stop(signal.SIGTERM) == 0


def test_a_taken_port_is_a_one_line_error_with_exit_2(server: Server) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    out = videogen("serve", "--port", port)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "hint: choose another --port (0 picks a free one) or --host" in out.stderr
