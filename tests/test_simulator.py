"""The real FalQueueProvider against SimulatorTransport, on a fake clock."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fakes import Sleeps
from videogen_cli.catalog import SEED_MODELS
from videogen_cli.domain import (
    ProviderHandle,
    ProviderResult,
    ProviderState,
    ProviderStatus,
    Submission,
)
from videogen_cli.errors import ProviderError, RefusedError
from videogen_cli.providers.fal import FalQueueProvider
from videogen_cli.providers.simulator import (
    ENDPOINTS,
    PROMPT_WORDS,
    SimulatorTransport,
    build_simulator,
)

VEO = "fal-ai/veo3.1"
VEO_I2V = "fal-ai/veo3.1/image-to-video"
SORA_I2V = "fal-ai/sora-2/image-to-video"
SORA_T2V = "fal-ai/sora-2/text-to-video"
IMAGE = "https://example.com/first-frame.png"
T0 = 1_800_000_000.0
Q = "https://queue.fal.run"

IN_QUEUE = ProviderState.IN_QUEUE
IN_PROGRESS = ProviderState.IN_PROGRESS
COMPLETED = ProviderState.COMPLETED


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def at(self, seconds_after_t0: float) -> None:
        self.now = T0 + seconds_after_t0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.sqlite3"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sim(db: Path, clock: FakeClock, sleeps: Sleeps) -> Iterator[FalQueueProvider]:
    provider = build_simulator(db, clock=clock, sleep=sleeps)
    yield provider
    provider.close()


@pytest.fixture
def raw(db: Path, clock: FakeClock) -> Iterator[httpx.Client]:
    """A bare client on the transport, to see the wire answers the adapter interprets."""
    client = httpx.Client(
        transport=SimulatorTransport(db, clock=clock), headers={"Authorization": "Key k"}
    )
    yield client
    client.close()


def handle(endpoint_id: str, submission: Submission) -> ProviderHandle:
    return ProviderHandle(
        endpoint_id=endpoint_id,
        request_id=submission.request_id,
        status_url=submission.status_url,
        response_url=submission.response_url,
        cancel_url=submission.cancel_url,
    )


def submit(
    sim: FalQueueProvider, prompt: str, endpoint_id: str = VEO, **settings: object
) -> ProviderHandle:
    arguments: dict[str, object] = {"prompt": prompt, **settings}
    if endpoint_id in (VEO_I2V, SORA_I2V):
        arguments.setdefault("image_url", IMAGE)
    return handle(endpoint_id, sim.submit(endpoint_id, arguments))


def states_at(
    sim: FalQueueProvider, clock: FakeClock, h: ProviderHandle, times: list[float]
) -> list[ProviderStatus]:
    seen = []
    for t in times:
        clock.at(t)
        seen.append(sim.status(h))
    return seen


def video_url(request_id: str) -> str:
    return f"https://sandbox.fal.invalid/files/{request_id}/output.mp4"


# --- the normal timeline -----------------------------------------------------------------


def test_submit_answers_like_fal(sim: FalQueueProvider) -> None:
    submission = sim.submit(VEO, {"prompt": "a paper boat", "duration": "4s"})

    assert str(uuid.UUID(submission.request_id)) == submission.request_id
    base = f"{Q}/fal-ai/veo3.1/requests/{submission.request_id}"
    assert submission == Submission(
        request_id=submission.request_id,
        status_url=f"{base}/status",
        response_url=base,
        cancel_url=f"{base}/cancel",
        queue_position=1,
    )


def test_full_timeline_then_the_video(sim: FalQueueProvider, clock: FakeClock) -> None:
    h = submit(sim, "a paper boat drifting down a rainy street")

    assert states_at(sim, clock, h, [0, 0.99, 1.0, 1.99, 2.0, 6.99, 7.0, 60]) == [
        ProviderStatus(IN_QUEUE, queue_position=1),
        ProviderStatus(IN_QUEUE, queue_position=1),
        ProviderStatus(IN_QUEUE, queue_position=0),
        ProviderStatus(IN_QUEUE, queue_position=0),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(COMPLETED),
        ProviderStatus(COMPLETED),
    ]
    assert sim.result(h) == ProviderResult(video_url=video_url(h.request_id))


def test_speed_scales_the_timeline(db: Path, clock: FakeClock) -> None:
    fast = build_simulator(db, speed=1000, clock=clock)
    h = submit(fast, "quick")

    assert states_at(fast, clock, h, [0.0015, 0.0025, 0.0071]) == [
        ProviderStatus(IN_QUEUE, queue_position=0),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(COMPLETED),
    ]
    fast.close()


def test_the_speed_of_the_submitting_process_fixes_the_timeline(db: Path, clock: FakeClock) -> None:
    fast = build_simulator(db, speed=100, clock=clock)
    slow_reader = build_simulator(db, speed=1, clock=clock)
    h = submit(fast, "made fast, read by a speed-1 process")

    clock.at(0.071)
    assert slow_reader.status(h) == ProviderStatus(COMPLETED)
    fast.close()
    slow_reader.close()


def test_status_and_result_wire_shapes(
    sim: FalQueueProvider, raw: httpx.Client, clock: FakeClock
) -> None:
    h = submit(sim, "wire")
    rid = h.request_id
    status_url = f"{Q}/fal-ai/veo3.1/requests/{rid}/status"
    urls = {
        "response_url": f"{Q}/fal-ai/veo3.1/requests/{rid}",
        "status_url": status_url,
        "cancel_url": f"{status_url[: -len('/status')]}/cancel",
    }

    queued = raw.get(status_url)
    assert queued.status_code == 202
    assert queued.headers["x-fal-request-id"] == rid
    assert queued.json() == {
        "status": "IN_QUEUE",
        "request_id": rid,
        **urls,
        "logs": None,
        "queue_position": 1,
    }

    clock.at(3)
    running = raw.get(status_url, params={"logs": "0"})
    assert running.status_code == 202
    assert running.json() == {"status": "IN_PROGRESS", "request_id": rid, **urls, "logs": None}

    clock.at(7)
    done = raw.get(status_url, params={"logs": "false"})
    assert done.status_code == 200
    assert done.json() == {
        "status": "COMPLETED",
        "request_id": rid,
        **urls,
        "logs": None,
        "metrics": {"inference_time": 5.0},
    }
    result = raw.get(urls["response_url"])
    assert result.status_code == 200
    assert result.json() == {"video": {"url": video_url(rid)}}
    assert raw.get(f"{urls['response_url']}/response").json() == result.json()


@pytest.mark.parametrize("value", ["1", "true", "TRUE"])
def test_status_logs_on_lists_runner_lines(
    value: str, sim: FalQueueProvider, raw: httpx.Client, clock: FakeClock
) -> None:
    h = submit(sim, "logs")
    clock.at(7)

    body = raw.get(f"{h.status_url}?logs={value}").json()

    assert body["logs"] == [
        {
            "message": "simulated runner: generating video",
            "timestamp": "2027-01-15T08:00:02Z",
            "level": "INFO",
            "source": "USER",
        },
        {
            "message": "simulated runner: done",
            "timestamp": "2027-01-15T08:00:07Z",
            "level": "INFO",
            "source": "USER",
        },
    ]


def test_status_rejects_a_logs_value_that_is_no_boolean(
    sim: FalQueueProvider, raw: httpx.Client
) -> None:
    h = submit(sim, "logs")

    answer = raw.get(f"{h.status_url}?logs=maybe")

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "logs"]


def test_sora_output_shape_and_app_path(
    sim: FalQueueProvider, raw: httpx.Client, clock: FakeClock
) -> None:
    h = submit(sim, "a lighthouse", SORA_I2V, duration=8)
    rid = h.request_id
    assert h.status_url == f"{Q}/fal-ai/sora-2/requests/{rid}/status"
    clock.at(7)

    assert raw.get(f"{Q}/fal-ai/sora-2/requests/{rid}").json() == {
        "video": {"url": video_url(rid), "content_type": "video/mp4"},
        "video_id": "video_" + rid.replace("-", "")[:24],
    }
    # fal serves status/result/cancel at owner/alias only (fal_client's rule, as
    # videogen_cli/providers/fal.py app_base).
    sub_path = raw.get(f"{Q}/fal-ai/sora-2/image-to-video/requests/{rid}/status")
    assert sub_path.status_code == 404
    other_app = raw.get(f"{Q}/fal-ai/veo3.1/requests/{rid}/status")
    assert other_app.status_code == 404


def test_a_stored_request_id_alone_is_enough_to_follow_the_job(
    sim: FalQueueProvider, clock: FakeClock
) -> None:
    h = submit(sim, "resume me", SORA_T2V)
    bare = ProviderHandle(endpoint_id=SORA_T2V, request_id=h.request_id)
    clock.at(7)

    assert sim.status(bare) == ProviderStatus(COMPLETED)
    assert sim.result(bare) == ProviderResult(video_url=video_url(h.request_id))


def test_urls_follow_the_configured_base_url(db: Path, clock: FakeClock) -> None:
    provider = build_simulator(db, base_url="http://127.0.0.1:8123", clock=clock)
    h = submit(provider, "local")

    assert h.status_url == f"http://127.0.0.1:8123/fal-ai/veo3.1/requests/{h.request_id}/status"
    clock.at(7)
    assert provider.status(h) == ProviderStatus(COMPLETED)
    provider.close()


def test_unknown_request_ids_and_endpoints_are_404(raw: httpx.Client) -> None:
    rid = str(uuid.uuid4())

    assert raw.get(f"{Q}/fal-ai/veo3.1/requests/{rid}/status").status_code == 404
    assert raw.get(f"{Q}/fal-ai/veo3.1/requests/{rid}").status_code == 404
    assert raw.put(f"{Q}/fal-ai/veo3.1/requests/{rid}/cancel").json() == {"status": "NOT_FOUND"}
    assert raw.post(f"{Q}/fal-ai/veo3", json={"prompt": "p"}).status_code == 404
    assert raw.post(f"{Q}/fal-ai/sora-2", json={"prompt": "p"}).status_code == 404


def test_unknown_request_id_through_the_adapter(sim: FalQueueProvider) -> None:
    missing = ProviderHandle(endpoint_id=VEO, request_id=str(uuid.uuid4()))

    with pytest.raises(ProviderError) as caught:
        sim.status(missing)

    assert caught.value.code == "provider_not_found"
    assert sim.cancel(missing) == "NOT_FOUND"


@pytest.mark.parametrize("authorization", [None, "Key ", "Key    ", "Bearer abc", "sandbox"])
def test_requests_without_a_key_are_401(db: Path, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    with httpx.Client(transport=SimulatorTransport(db), headers=headers) as client:
        answer = client.post(f"{Q}/{VEO}", json={"prompt": "p"})

    assert answer.status_code == 401


def test_submit_401_through_the_adapter_is_provider_auth(db: Path) -> None:
    class NoAuth(SimulatorTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            del request.headers["authorization"]
            return super().handle_request(request)

    provider = FalQueueProvider("sandbox", transport=NoAuth(db), name="simulator")

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_auth"
    provider.close()


# --- input validation (each model's llms.txt) -----------------------------------------------------


VEO_DURATION = "duration: Input should be '4s', '6s' or '8s' (enum)"
SORA_DURATION = "duration: Input should be 4, 8, 12, 16 or 20 (enum)"


@pytest.mark.parametrize(
    ("endpoint_id", "arguments", "message"),
    [
        (VEO, {}, "prompt: Field required (missing)"),
        (VEO, {"prompt": 7}, "prompt: Input should be a valid string (string_type)"),
        (VEO, {"prompt": "p", "duration": 4}, VEO_DURATION),
        (VEO, {"prompt": "p", "duration": "5s"}, VEO_DURATION),
        (
            VEO,
            {"prompt": "p", "safety_tolerance": 4},
            "safety_tolerance: Input should be '1', '2', '3', '4', '5' or '6' (enum)",
        ),
        (
            VEO,
            {"prompt": "p", "generate_audio": "no"},
            "generate_audio: Input should be a valid boolean (bool_type)",
        ),
        (VEO_I2V, {"prompt": "p"}, "image_url: Field required (missing)"),
        (SORA_I2V, {"prompt": "p", "image_url": IMAGE, "duration": "4"}, SORA_DURATION),
        (SORA_T2V, {"prompt": "p", "duration": True}, SORA_DURATION),
        (
            SORA_T2V,
            {"prompt": "p", "aspect_ratio": "auto"},
            "aspect_ratio: Input should be '9:16' or '16:9' (enum)",
        ),
        (
            SORA_I2V,
            {"duration": 5},
            "prompt: Field required (missing); image_url: Field required (missing); "
            + SORA_DURATION,
        ),
    ],
)
def test_invalid_input_is_refused_with_fal_detail_items(
    sim: FalQueueProvider, db: Path, endpoint_id: str, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(RefusedError) as caught:
        sim.submit(endpoint_id, arguments)

    assert caught.value.code == "provider_rejected"
    assert caught.value.message == message
    assert rows(db) == 0


def test_422_items_carry_loc_msg_type_url_input(raw: httpx.Client) -> None:
    answer = raw.post(f"{Q}/{VEO}", json={"prompt": "p", "duration": 4})

    assert answer.status_code == 422
    assert answer.json() == {
        "detail": [
            {
                "loc": ["body", "duration"],
                "msg": "Input should be '4s', '6s' or '8s'",
                "type": "enum",
                "url": "https://docs.fal.ai/errors#enum",
                "input": 4,
                "ctx": {"expected": "'4s', '6s' or '8s'"},
            }
        ]
    }


def test_a_body_that_is_not_json_is_422(raw: httpx.Client) -> None:
    answer = raw.post(f"{Q}/{VEO}", content=b"{not json")

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_every_catalog_model_and_setting_is_served(sim: FalQueueProvider) -> None:
    # The catalog may offer less than fal accepts, never more.
    submitted = 0
    for model in SEED_MODELS:
        assert model.endpoint_id in ENDPOINTS
        for name, spec in model.settings.items():
            for value in spec.allowed or (spec.default,):
                submit(sim, "catalog check", model.endpoint_id, **{name: value})
                submitted += 1
    assert submitted == 31


# --- prompt words --------------------------------------------------------------------------


def test_prompt_words_are_documented() -> None:
    assert sorted(PROMPT_WORDS) == [
        "sim:fail",
        "sim:flaky",
        "sim:lost",
        "sim:lost-once",
        "sim:no-stream",
        "sim:refuse",
        "sim:requeue",
        "sim:result-error",
        "sim:retry-after",
        "sim:slow",
        "sim:stream-drop",
        "sim:stream-quiet",
    ]
    assert all(0 < len(text) <= 90 and "\n" not in text for text in PROMPT_WORDS.values())


def test_sim_refuse_is_refused_at_submit(sim: FalQueueProvider, db: Path, sleeps: Sleeps) -> None:
    with pytest.raises(RefusedError) as caught:
        sim.submit(VEO, {"prompt": "a cat (sim:refuse)"})

    assert caught.value.code == "provider_rejected"
    assert caught.value.message == (
        "prompt: The content could not be processed because it contained material flagged "
        "by a content checker. (content_policy_violation)"
    )
    assert sleeps.calls == []
    assert rows(db) == 0


def test_sim_fail_completes_with_an_error(
    sim: FalQueueProvider, raw: httpx.Client, clock: FakeClock, sleeps: Sleeps
) -> None:
    h = submit(sim, "a storm SIM:FAIL")

    assert states_at(sim, clock, h, [1, 3, 7]) == [
        ProviderStatus(IN_QUEUE, queue_position=0),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(COMPLETED, error="Runner disconnected", error_type="runner_disconnected"),
    ]
    answer = raw.get(h.response_url or "")
    assert answer.status_code == 503
    assert answer.headers["x-fal-error-type"] == "runner_disconnected"
    assert answer.headers["x-fal-request-id"] == h.request_id
    assert answer.json() == {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    # The result is a 5xx, so the adapter calls it transient; the core fails the job on
    # the status error instead.
    with pytest.raises(ProviderError) as caught:
        sim.result(h)
    assert caught.value.code == "provider_unavailable"
    assert caught.value.message == (
        "fal result call failed after 3 attempts: HTTP 503: "
        "Runner disconnected (runner_disconnected)"
    )
    assert sleeps.calls == [0.5, 1.0]


def test_sim_result_error_shows_only_at_the_result(sim: FalQueueProvider, clock: FakeClock) -> None:
    h = submit(sim, "an empty room sim:result-error")

    clock.at(7)
    assert sim.status(h) == ProviderStatus(COMPLETED)
    assert sim.result(h) == ProviderResult(
        error="No media was generated for this request. (no_media_generated)"
    )


def test_sim_slow_stays_in_progress_for_ten_minutes(
    sim: FalQueueProvider, clock: FakeClock
) -> None:
    h = submit(sim, "glacier sim:slow")

    assert states_at(sim, clock, h, [2, 300, 601.99, 602]) == [
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(COMPLETED),
    ]
    assert sim.result(h) == ProviderResult(video_url=video_url(h.request_id))


def test_sim_requeue_goes_back_to_the_queue_once(sim: FalQueueProvider, clock: FakeClock) -> None:
    h = submit(sim, "sim:requeue a kite")

    assert states_at(sim, clock, h, [1.5, 2, 4.99, 5, 6.99, 7, 11.99, 12]) == [
        ProviderStatus(IN_QUEUE, queue_position=0),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(IN_QUEUE, queue_position=0),
        ProviderStatus(IN_QUEUE, queue_position=0),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(IN_PROGRESS),
        ProviderStatus(COMPLETED),
    ]
    assert sim.result(h) == ProviderResult(video_url=video_url(h.request_id))


def test_sim_flaky_retries_sometimes_succeed_and_sometimes_give_up(
    sim: FalQueueProvider, raw: httpx.Client, clock: FakeClock, sleeps: Sleeps
) -> None:
    h = submit(sim, "sim:flaky fireworks")
    outcomes: list[str] = []
    for t in [3, 3, 3, 7, 7, 7]:
        clock.at(t)
        sleeps.calls.clear()
        try:
            outcomes.append(f"{sim.status(h).state.value} after {sleeps.calls}")
        except ProviderError as exc:
            outcomes.append(f"{exc.code} after {sleeps.calls}")

    assert outcomes == [
        "provider_unavailable after [0.5, 1.0]",  # 429, 503, 429
        "IN_PROGRESS after [0.5]",  # 503, ok
        "IN_PROGRESS after []",  # ok
        "provider_unavailable after [0.5, 1.0]",
        "COMPLETED after [0.5]",
        "COMPLETED after []",
    ]
    assert sim.result(h) == ProviderResult(video_url=video_url(h.request_id))
    # The two kinds of trouble on the wire: a 429, then an ingress 503 with no request id.
    first, second = raw.get(h.status_url or ""), raw.get(h.status_url or "")
    assert first.status_code == 429
    assert "x-fal-request-id" not in first.headers
    assert second.status_code == 503
    assert "x-fal-request-id" not in second.headers
    assert "nginx" in second.text


@pytest.mark.parametrize(
    "prompt", ["sim:failure is not a word", "simsim:fail", "a sim:fail-safe plan", "sim: fail"]
)
def test_prompt_words_match_whole_words_only(
    prompt: str, sim: FalQueueProvider, clock: FakeClock
) -> None:
    h = submit(sim, prompt)

    clock.at(7)
    assert sim.status(h) == ProviderStatus(COMPLETED)


# --- cancel --------------------------------------------------------------------------------


def test_cancel_in_queue_removes_the_request(sim: FalQueueProvider, clock: FakeClock) -> None:
    h = submit(sim, "never mind")

    clock.at(1)
    assert sim.cancel(h) == "CANCELLATION_REQUESTED"
    assert sim.status(h) == ProviderStatus(
        COMPLETED, error="Request cancelled by the client", error_type="client_cancelled"
    )
    clock.at(30)
    assert sim.result(h) == ProviderResult(
        error="Request cancelled by the client (client_cancelled)"
    )
    assert sim.cancel(h) == "ALREADY_COMPLETED"


def test_cancel_while_running_is_requested_but_the_job_still_completes(
    sim: FalQueueProvider, clock: FakeClock
) -> None:
    h = submit(sim, "too late")

    clock.at(3)
    assert sim.cancel(h) == "CANCELLATION_REQUESTED"
    clock.at(7)
    assert sim.status(h) == ProviderStatus(COMPLETED)
    assert sim.result(h) == ProviderResult(video_url=video_url(h.request_id))
    assert sim.cancel(h) == "ALREADY_COMPLETED"


def test_cancel_wire_codes(sim: FalQueueProvider, raw: httpx.Client, clock: FakeClock) -> None:
    h = submit(sim, "codes")
    cancel_url = h.cancel_url or ""

    requested = raw.put(cancel_url)
    assert (requested.status_code, requested.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    clock.at(1)
    done = raw.put(cancel_url)
    assert (done.status_code, done.json()) == (400, {"status": "ALREADY_COMPLETED"})
    assert raw.get(cancel_url).status_code == 405


def test_result_before_completion_is_400(
    sim: FalQueueProvider, raw: httpx.Client, clock: FakeClock
) -> None:
    h = submit(sim, "patience")

    clock.at(3)
    answer = raw.get(h.response_url or "")
    assert (answer.status_code, answer.json()) == (400, {"detail": "Request is still in progress"})


# --- shared state --------------------------------------------------------------------------


def test_two_transports_on_one_file_share_every_request(
    db: Path, clock: FakeClock, sleeps: Sleeps
) -> None:
    generator = build_simulator(db, clock=clock, sleep=sleeps)
    watcher = build_simulator(db, clock=clock, sleep=sleeps)
    h = submit(generator, "shared sim:flaky")

    clock.at(3)
    with pytest.raises(ProviderError):
        watcher.status(h)  # calls 1-3 fail
    assert generator.status(h) == ProviderStatus(IN_PROGRESS)  # call 4 fails, 5 succeeds
    assert watcher.status(h) == ProviderStatus(IN_PROGRESS)  # call 6 succeeds
    assert watcher.cancel(h) == "CANCELLATION_REQUESTED"
    generator.close()
    watcher.close()

    reopened = build_simulator(db, clock=clock, sleep=sleeps)
    clock.at(7)
    sleeps.calls.clear()
    with pytest.raises(ProviderError):
        reopened.status(h)  # the call counter survived: calls 7-9 fail again
    assert sleeps.calls == [0.5, 1.0]
    reopened.close()


@pytest.mark.slow
def test_a_job_submitted_by_another_process_is_seen_here(db: Path) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from videogen_cli.providers.simulator import build_simulator\n"
        "p = build_simulator(Path(sys.argv[1]))\n"
        "print(p.submit('fal-ai/veo3.1', {'prompt': 'from another process'}).request_id)\n"
        "p.close()\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(db)], capture_output=True, text=True, check=True
    )
    request_id = child.stdout.strip()

    # Wall clock is what processes share; 100 s later the job must be done.
    here = build_simulator(db, clock=lambda: time.time() + 100)
    bare = ProviderHandle(endpoint_id=VEO, request_id=request_id)
    assert here.status(bare) == ProviderStatus(COMPLETED)
    assert here.result(bare) == ProviderResult(video_url=video_url(request_id))
    here.close()


def test_only_sim_tables_are_created_in_wal_mode(sim: FalQueueProvider, db: Path) -> None:
    submit(sim, "schema")

    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        journal = conn.execute("pragma journal_mode").fetchone()[0]
        user_version = conn.execute("pragma user_version").fetchone()[0]
        stored = conn.execute(
            "select endpoint_id, app_id, words, input from sim_requests"
        ).fetchone()
    assert tables == ["sim_requests", "sim_sandbox"]
    assert journal == "wal"
    assert user_version == 0  # the sandbox store's own schema version is not ours to touch
    assert stored == ("fal-ai/veo3.1", "fal-ai/veo3.1", "[]", json.dumps({"prompt": "schema"}))


def test_an_unusable_database_is_a_safe_connection_failure(tmp_path: Path, sleeps: Sleeps) -> None:
    provider = build_simulator(tmp_path, sleep=sleeps)  # a directory, not a database file

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_unavailable"
    assert "simulator database unavailable" in caught.value.message
    assert sleeps.calls == [0.5, 1.0]
    provider.close()


def test_the_simulator_provider_names_itself(sim: FalQueueProvider) -> None:
    assert sim.name == "simulator"
    assert repr(sim) == "FalQueueProvider(name='simulator', base_url='https://queue.fal.run')"


def rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        exists = conn.execute(
            "select count(*) from sqlite_master where name = 'sim_requests'"
        ).fetchone()[0]
        return int(conn.execute("select count(*) from sim_requests").fetchone()[0]) if exists else 0
