"""FalQueueProvider: wire format from cassettes, retry policy from scripted transports.

The cassettes in ``cassettes/test_fal_adapter/`` were synthesized from the documented
queue API shapes (https://fal.ai/docs/documentation/model-apis/inference/queue), not
recorded: fal.ai is not reachable where they were written. ``make cassettes``
re-records them with a real FAL_KEY; the status/result/cancel cassettes name fixed
request ids, so a live re-record needs requests in those states and the asserted values
reviewed (as with any cassette diff).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import videogen_cli
from tests.support.fakes import Sleeps
from videogen_cli.domain import (
    ProviderHandle,
    ProviderIdentity,
    ProviderResult,
    ProviderState,
    ProviderStatus,
)
from videogen_cli.errors import ProviderError, RefusedError, UsageError
from videogen_cli.providers.fal import FalQueueProvider, app_base, describe_error, request_urls

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes" / "test_fal_adapter"
RECORDING = os.environ.get("VIDEOGEN_RECORD") == "1"
KEY = os.environ.get("FAL_KEY") or "test-key"

VEO = "fal-ai/veo3.1"
VEO_I2V = "fal-ai/veo3.1/image-to-video"
SORA_I2V = "fal-ai/sora-2/image-to-video"
# Request ids the synthesized cassettes use.
SUBMITTED_ID = "5a0f3d6e-2c1b-4e8f-9a7d-1b2c3d4e5f60"
QUEUED_ID = "6b1e4f7a-3d2c-4f90-8b8e-2c3d4e5f6071"
RUNNING_ID = "7c2f5a8b-4e3d-4a01-9c9f-3d4e5f607182"
DONE_ID = "8d3a6b9c-5f4e-4b12-8d0a-4e5f60718293"
FAILED_ID = "9e4b7cad-6a5f-4c23-9e1b-5f60718293a4"
NO_MEDIA_ID = "af5c8dbe-7b6a-4d34-8f2c-60718293a4b5"
TIMED_OUT_ID = "b06d9ecf-8c7b-4e45-9a3d-718293a4b5c6"
SORA_ID = "c17eafd0-9d8c-4f56-8b4e-8293a4b5c6d7"


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, object]:
    config: dict[str, object] = {"filter_headers": [("authorization", "REDACTED")]}
    if not RECORDING:
        # Replay only: a request the cassette lacks must fail, never reach the network.
        config["record_mode"] = "none"
    return config


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def live(sleeps: Sleeps) -> Iterator[FalQueueProvider]:
    """The adapter on httpx's default transport, which the cassettes replace."""
    provider = FalQueueProvider(KEY, sleep=sleeps)
    yield provider
    provider.close()


def veo_handle(request_id: str) -> ProviderHandle:
    base = f"https://queue.fal.run/fal-ai/veo3.1/requests/{request_id}"
    return ProviderHandle(
        endpoint_id=VEO,
        request_id=request_id,
        status_url=f"{base}/status",
        response_url=base,
        cancel_url=f"{base}/cancel",
    )


# --- cassettes: the documented wire shapes ----------------------------------------------


@pytest.mark.vcr
def test_submit_returns_the_queue_handle(live: FalQueueProvider) -> None:
    submission = live.submit(VEO, {"prompt": "a paper boat on a rainy street", "duration": "4s"})

    assert submission.request_id == SUBMITTED_ID
    base = f"https://queue.fal.run/fal-ai/veo3.1/requests/{SUBMITTED_ID}"
    assert submission.status_url == f"{base}/status"
    assert submission.response_url == base
    assert submission.cancel_url == f"{base}/cancel"
    assert submission.queue_position == 0


@pytest.mark.vcr
def test_submit_refused_with_422_is_a_definitive_refusal(
    live: FalQueueProvider, sleeps: Sleeps
) -> None:
    with pytest.raises(RefusedError) as caught:
        live.submit(VEO, {"prompt": "a famous cartoon mouse", "duration": "5s"})

    assert caught.value.code == "provider_rejected"
    assert caught.value.exit_code == 4
    assert caught.value.message == (
        "prompt: The content could not be processed because it contained material flagged "
        "by a content checker. (content_policy_violation); "
        "duration: Input should be '4s', '6s' or '8s' (enum)"
    )
    assert sleeps.calls == []


@pytest.mark.vcr
def test_status_in_queue_reports_the_queue_position(live: FalQueueProvider) -> None:
    assert live.status(veo_handle(QUEUED_ID)) == ProviderStatus(
        state=ProviderState.IN_QUEUE, queue_position=3
    )


@pytest.mark.vcr
def test_status_in_progress(live: FalQueueProvider) -> None:
    assert live.status(veo_handle(RUNNING_ID)) == ProviderStatus(state=ProviderState.IN_PROGRESS)


@pytest.mark.vcr
def test_status_completed(live: FalQueueProvider) -> None:
    assert live.status(veo_handle(DONE_ID)) == ProviderStatus(state=ProviderState.COMPLETED)


@pytest.mark.vcr
def test_status_completed_with_error_carries_the_error(live: FalQueueProvider) -> None:
    assert live.status(veo_handle(FAILED_ID)) == ProviderStatus(
        state=ProviderState.COMPLETED,
        error="Runner disconnected",
        error_type="runner_disconnected",
    )


@pytest.mark.vcr
def test_status_of_a_stored_sora_request_derives_the_app_url(live: FalQueueProvider) -> None:
    # Resuming from a request id alone: the sub-path "image-to-video" must be dropped.
    handle = ProviderHandle(endpoint_id=SORA_I2V, request_id=SORA_ID)

    assert live.status(handle) == ProviderStatus(state=ProviderState.IN_PROGRESS)


@pytest.mark.vcr
def test_result_returns_the_video_url(live: FalQueueProvider) -> None:
    assert live.result(veo_handle(DONE_ID)) == ProviderResult(
        video_url="https://v3b.fal.media/files/b/kangaroo/8d3a6b9c_output.mp4"
    )


@pytest.mark.vcr
def test_result_422_detail_list_is_the_jobs_own_error(
    live: FalQueueProvider, sleeps: Sleeps
) -> None:
    assert live.result(veo_handle(NO_MEDIA_ID)) == ProviderResult(
        error="No media was generated for this request. (no_media_generated)"
    )
    assert sleeps.calls == []


@pytest.mark.vcr
def test_result_504_flat_error_is_transient_after_retries(
    live: FalQueueProvider, sleeps: Sleeps
) -> None:
    with pytest.raises(ProviderError) as caught:
        live.result(veo_handle(TIMED_OUT_ID))

    assert caught.value.code == "provider_unavailable"
    assert caught.value.message == (
        "fal result call failed after 3 attempts: HTTP 504: Request timed out (request_timeout)"
    )
    assert sleeps.calls == [0.5, 1.0]


@pytest.mark.vcr
def test_cancel_of_a_queued_request_is_requested(live: FalQueueProvider) -> None:
    assert live.cancel(veo_handle(QUEUED_ID)) == "CANCELLATION_REQUESTED"


@pytest.mark.vcr
def test_cancel_of_a_finished_request_is_already_completed(live: FalQueueProvider) -> None:
    assert live.cancel(veo_handle(DONE_ID)) == "ALREADY_COMPLETED"


def test_every_cassette_is_marked_synthesized_and_holds_no_key() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) == 12
    for path in files:
        text = path.read_text()
        assert text.startswith("# Synthesized from the documented fal queue API shapes"), path
        assert "make cassettes" in text.split("\n\n", 1)[0], path
        # Every request carries the filtered header, and no key value anywhere.
        auth_values = re.findall(r"(?im)^\s*authorization:\n\s*- (.*)$", text)
        assert auth_values == ["REDACTED"] * text.count("- request:"), path
        assert "Key " not in text, path


# --- pure helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint_id", "expected"),
    [
        ("fal-ai/sora-2/image-to-video", "fal-ai/sora-2"),
        ("fal-ai/sora-2/text-to-video", "fal-ai/sora-2"),
        ("fal-ai/veo3.1", "fal-ai/veo3.1"),
        ("fal-ai/veo3.1/image-to-video", "fal-ai/veo3.1"),
        ("fal-ai/flux/dev/image-to-image", "fal-ai/flux"),
        ("workflows/alice/my-flow", "workflows/alice/my-flow"),
        ("workflows/alice/my-flow/extra/path", "workflows/alice/my-flow"),
        ("comfy/bob/graph/run", "comfy/bob/graph"),
        ("/fal-ai/veo3.1/", "fal-ai/veo3.1"),
        ("12345-my-app", "12345/my-app"),
    ],
)
def test_app_base_drops_the_sub_path(endpoint_id: str, expected: str) -> None:
    assert app_base(endpoint_id) == expected


@pytest.mark.parametrize("bad", ["", "sora-2", "fal-ai/", "workflows/alice", "comfy//x"])
def test_app_base_rejects_ids_without_owner_and_alias(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid fal endpoint id"):
        app_base(bad)


def test_request_urls_follow_the_client_rule() -> None:
    assert request_urls("https://queue.fal.run/", SORA_I2V, "r1") == (
        "https://queue.fal.run/fal-ai/sora-2/requests/r1/status",
        "https://queue.fal.run/fal-ai/sora-2/requests/r1",
        "https://queue.fal.run/fal-ai/sora-2/requests/r1/cancel",
    )


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_describe_error_flat_shape() -> None:
    body = _body({"detail": "Request timed out", "error_type": "request_timeout"})
    assert describe_error(504, {}, body) == "Request timed out (request_timeout)"


def test_describe_error_flat_shape_takes_the_type_from_the_header() -> None:
    headers = {"X-Fal-Error-Type": "runner_disconnected"}
    body = _body({"detail": "Runner disconnected"})
    assert describe_error(503, headers, body) == "Runner disconnected (runner_disconnected)"


def test_describe_error_detail_list_drops_body_and_joins_items() -> None:
    body = _body(
        {
            "detail": [
                {
                    "loc": ["body", "prompt"],
                    "msg": "flagged by a content checker",
                    "type": "content_policy_violation",
                    "url": "https://docs.fal.ai/errors#content_policy_violation",
                    "ctx": {},
                    "input": "x",
                },
                {"loc": ["body", "images", 0, "url"], "msg": "could not load", "type": "x"},
                {"loc": ["body"], "msg": "no media", "type": "no_media_generated"},
                {"msg": "field required"},
            ]
        }
    )
    assert describe_error(422, {}, body) == (
        "prompt: flagged by a content checker (content_policy_violation); "
        "images[0].url: could not load (x); no media (no_media_generated); field required"
    )


def test_describe_error_plain_string_detail() -> None:
    assert describe_error(422, {}, _body({"detail": "Invalid input"})) == "Invalid input"


def test_describe_error_non_json_body_uses_status_and_stripped_text() -> None:
    html = (
        b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
        b"<body><center><h1>503 Service Temporarily Unavailable</h1></center>"
        b"<hr><center>nginx</center></body></html>"
    )
    assert describe_error(503, {}, html) == (
        "HTTP 503 Service Unavailable: 503 Service Temporarily Unavailable "
        "503 Service Temporarily Unavailable nginx"
    )


def test_describe_error_empty_body_and_long_text() -> None:
    assert describe_error(502, {}, b"") == "HTTP 502 Bad Gateway"
    line = describe_error(500, {}, b"x" * 5000)
    assert line == "HTTP 500 Internal Server Error: " + "x" * 157 + "..."


def test_describe_error_is_always_one_line() -> None:
    body = _body({"detail": "first line\nsecond\tline"})
    assert describe_error(400, {}, body) == "first line second line"


# --- scripted transport: retry policy, deadline, secrecy ----------------------------------

Step = httpx.Response | Exception


class Script:
    """A MockTransport handler that answers from a list and records every request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def make(
    script: Script,
    sleeps: Sleeps,
    *,
    key: str = "test-key",
    monotonic: Callable[[], float] = lambda: 1000.0,
    timeout: float = 30.0,
) -> FalQueueProvider:
    return FalQueueProvider(
        key,
        transport=httpx.MockTransport(script),
        sleep=sleeps,
        monotonic=monotonic,
        timeout=timeout,
    )


QUEUED = {
    "status": "IN_QUEUE",
    "request_id": "r1",
    "status_url": "https://queue.fal.run/fal-ai/veo3.1/requests/r1/status",
    "response_url": "https://queue.fal.run/fal-ai/veo3.1/requests/r1",
    "cancel_url": "https://queue.fal.run/fal-ai/veo3.1/requests/r1/cancel",
    "queue_position": 2,
}
INGRESS_503 = httpx.Response(503, text="<html><center>nginx</center></html>")
HANDLE = veo_handle("r1")


def ok_submit(status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=QUEUED, headers={"x-fal-request-id": "r1"})


def test_submit_sends_the_documented_request(sleeps: Sleeps) -> None:
    script = Script(ok_submit(201))
    provider = make(script, sleeps)

    submission = provider.submit(VEO, {"prompt": "p", "duration": "4s"})

    assert submission.request_id == "r1"
    assert submission.queue_position == 2
    (request,) = script.requests
    assert request.method == "POST"
    assert str(request.url) == "https://queue.fal.run/fal-ai/veo3.1"
    assert json.loads(request.content) == {"prompt": "p", "duration": "4s"}
    assert request.headers["authorization"] == "Key test-key"
    assert request.headers["user-agent"] == f"videogen-cli/{videogen_cli.__version__}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert request.extensions["timeout"] == {
        "connect": 10.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 30.0,
    }


def test_submit_is_retried_on_429_and_ingress_503(sleeps: Sleeps) -> None:
    script = Script(
        httpx.Response(429, json={"detail": "Too many requests"}), INGRESS_503, ok_submit()
    )
    provider = make(script, sleeps)

    assert provider.submit(VEO, {"prompt": "p"}).request_id == "r1"
    assert len(script.requests) == 3
    assert sleeps.calls == [0.5, 1.0]


def test_submit_is_retried_when_the_connection_was_never_made(sleeps: Sleeps) -> None:
    script = Script(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok_submit())
    provider = make(script, sleeps)

    assert provider.submit(VEO, {"prompt": "p"}).request_id == "r1"
    assert sleeps.calls == [0.5, 1.0]


def test_submit_gives_up_after_three_safe_failures(sleeps: Sleeps) -> None:
    script = Script(INGRESS_503, httpx.Response(429), httpx.ConnectError("refused"))
    provider = make(script, sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_unavailable"
    assert caught.value.message == (
        "fal did not accept the request after 3 attempts: ConnectError: refused"
    )
    assert len(script.requests) == 3
    assert sleeps.calls == [0.5, 1.0]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, json={"detail": "Internal error", "error_type": "internal_error"}),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server hung up"),
    ],
    ids=["500", "read-timeout", "dropped-connection"],
)
def test_submit_is_never_retried_once_fal_may_have_the_job(answer: Step, sleeps: Sleeps) -> None:
    script = Script(answer, ok_submit())
    provider = make(script, sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_outcome_unknown"
    assert "the outcome is unknown" in caught.value.message
    assert len(script.requests) == 1
    assert sleeps.calls == []


@pytest.mark.parametrize("code", [401, 403])
def test_submit_auth_failure_names_fal_key(code: int, sleeps: Sleeps) -> None:
    script = Script(httpx.Response(code, json={"detail": "No user found for Key ID and Secret"}))
    provider = make(script, sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_auth"
    assert caught.value.exit_code == 5
    assert caught.value.hint is not None and caught.value.hint.startswith("check FAL_KEY")
    assert caught.value.message == (
        f"fal refused the API key (HTTP {code}): No user found for Key ID and Secret"
    )


def test_submit_other_4xx_is_refused(sleeps: Sleeps) -> None:
    provider = make(Script(httpx.Response(404, json={"detail": "Application not found"})), sleeps)

    with pytest.raises(RefusedError) as caught:
        provider.submit("fal-ai/nope", {"prompt": "p"})

    assert caught.value.code == "provider_rejected"
    assert caught.value.message == "Application not found"


def test_submit_does_not_follow_a_redirect(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(302, headers={"location": "https://elsewhere.example/x"}))
    provider = make(script, sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_protocol_error"
    assert caught.value.message == (
        "fal answered the submit with HTTP 302 (redirect to https://elsewhere.example/x); "
        "no job was created"
    )
    assert len(script.requests) == 1


def test_reads_follow_redirects_on_the_same_origin(sleeps: Sleeps) -> None:
    moved = "https://queue.fal.run/fal-ai/veo3.1/requests/r1/status/?logs=0"
    script = Script(
        httpx.Response(307, headers={"location": moved}),
        httpx.Response(202, json={"status": "IN_PROGRESS"}),
    )
    provider = make(script, sleeps)

    assert provider.status(HANDLE) == ProviderStatus(state=ProviderState.IN_PROGRESS)
    assert str(script.requests[1].url) == moved
    assert script.requests[1].headers["authorization"] == "Key test-key"


def test_submit_2xx_without_request_id_is_an_unknown_outcome(sleeps: Sleeps) -> None:
    provider = make(Script(httpx.Response(200, json={"status": "IN_QUEUE"})), sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_outcome_unknown"


def test_status_is_retried_on_5xx_and_timeouts(sleeps: Sleeps) -> None:
    script = Script(
        httpx.Response(500, text="oops"),
        httpx.ReadTimeout("slow"),
        httpx.Response(202, json={"status": "IN_PROGRESS", "request_id": "r1", "logs": None}),
    )
    provider = make(script, sleeps)

    assert provider.status(HANDLE) == ProviderStatus(state=ProviderState.IN_PROGRESS)
    assert [str(r.url) for r in script.requests] == [
        "https://queue.fal.run/fal-ai/veo3.1/requests/r1/status?logs=0"
    ] * 3
    assert sleeps.calls == [0.5, 1.0]


def test_status_gives_up_as_provider_unavailable(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(429), httpx.Response(502), INGRESS_503)
    provider = make(script, sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.status(HANDLE)

    assert caught.value.code == "provider_unavailable"
    assert caught.value.message == (
        "fal status call failed after 3 attempts: HTTP 503: HTTP 503 Service Unavailable: nginx"
    )


def test_status_401_is_provider_auth_without_retry(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(401, json={"detail": "Unauthorized"}))
    provider = make(script, sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.status(HANDLE)

    assert caught.value.code == "provider_auth"
    assert sleeps.calls == []


def test_status_unknown_state_and_unknown_request(sleeps: Sleeps) -> None:
    script = Script(
        httpx.Response(200, json={"status": "FAILED"}),
        httpx.Response(404, json={"detail": "Request not found"}),
    )
    provider = make(script, sleeps)

    with pytest.raises(ProviderError) as unknown_state:
        provider.status(HANDLE)
    with pytest.raises(ProviderError) as unknown_request:
        provider.status(HANDLE)

    assert unknown_state.value.code == "provider_protocol_error"
    assert unknown_state.value.message == "fal reported an unknown status 'FAILED' for request r1"
    assert unknown_request.value.code == "provider_not_found"


def test_status_completed_with_only_an_error_type(sleeps: Sleeps) -> None:
    body = {
        "status": "COMPLETED",
        "request_id": "r1",
        "logs": None,
        "error_type": "client_cancelled",
    }
    provider = make(Script(httpx.Response(200, json=body)), sleeps)

    assert provider.status(HANDLE) == ProviderStatus(
        state=ProviderState.COMPLETED, error="client_cancelled", error_type="client_cancelled"
    )


def test_urls_on_a_foreign_origin_are_replaced_by_derived_ones(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 0}))
    provider = make(script, sleeps)
    handle = ProviderHandle(
        endpoint_id=VEO_I2V, request_id="r9", status_url="https://evil.example/steal/status"
    )

    assert provider.status(handle) == ProviderStatus(ProviderState.IN_QUEUE, queue_position=0)
    assert str(script.requests[0].url) == (
        "https://queue.fal.run/fal-ai/veo3.1/requests/r9/status?logs=0"
    )


def test_a_malformed_endpoint_id_is_a_usage_error(sleeps: Sleeps) -> None:
    provider = make(Script(), sleeps)

    with pytest.raises(UsageError) as caught:
        provider.status(ProviderHandle(endpoint_id="veo", request_id="r1"))

    assert caught.value.code == "invalid_endpoint_id"


def test_result_without_a_video_is_the_jobs_error(sleeps: Sleeps) -> None:
    provider = make(Script(httpx.Response(200, json={"images": [], "seed": 4})), sleeps)

    assert provider.result(HANDLE) == ProviderResult(
        error="fal returned no video (response keys: images, seed)"
    )


def test_result_retries_408_and_reports_a_404_as_not_found(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(408), httpx.Response(404, json={"detail": "Request not found"}))
    provider = make(script, sleeps)

    # Not the job's own error: one "not found" is never final (JobService.refresh counts).
    with pytest.raises(ProviderError) as caught:
        provider.result(HANDLE)

    assert caught.value.code == "provider_not_found"
    assert caught.value.message == "fal does not know request r1 (Request not found)"
    assert sleeps.calls == [0.5]


def test_result_other_4xx_is_the_jobs_error(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(410, json={"detail": "Result expired"}))
    provider = make(script, sleeps)

    assert provider.result(HANDLE) == ProviderResult(error="Result expired")


def test_result_401_is_not_the_jobs_fault(sleeps: Sleeps) -> None:
    provider = make(Script(httpx.Response(401, json={"detail": "Unauthorized"})), sleeps)

    with pytest.raises(ProviderError) as caught:
        provider.result(HANDLE)

    assert caught.value.code == "provider_auth"


@pytest.mark.parametrize(
    ("answer", "word"),
    [
        (httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"}), "CANCELLATION_REQUESTED"),
        (httpx.Response(200, json={"status": "OK"}), "OK"),
        (httpx.Response(200, text=""), "OK"),
        (httpx.Response(400, json={"status": "ALREADY_COMPLETED"}), "ALREADY_COMPLETED"),
        (httpx.Response(404, json={"status": "NOT_FOUND"}), "NOT_FOUND"),
    ],
)
def test_cancel_words(answer: httpx.Response, word: str, sleeps: Sleeps) -> None:
    script = Script(answer)
    provider = make(script, sleeps)

    assert provider.cancel(HANDLE) == word
    assert script.requests[0].method == "PUT"
    assert str(script.requests[0].url) == "https://queue.fal.run/fal-ai/veo3.1/requests/r1/cancel"


def test_cancel_is_retried_on_5xx(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(502), httpx.Response(202, json={}))
    provider = make(script, sleeps)

    assert provider.cancel(HANDLE) == "CANCELLATION_REQUESTED"
    assert sleeps.calls == [0.5]


class FakeMonotonic:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_deadline_clips_each_request_timeout(sleeps: Sleeps) -> None:
    clock = FakeMonotonic(100.0)
    script = Script(httpx.Response(202, json={"status": "IN_PROGRESS"}))
    provider = make(script, sleeps, monotonic=clock)
    provider.deadline = 104.0

    provider.status(HANDLE)

    assert script.requests[0].extensions["timeout"] == {
        "connect": 4.0,
        "read": 4.0,
        "write": 4.0,
        "pool": 4.0,
    }


def test_short_timeout_also_bounds_connect(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(202, json={"status": "IN_PROGRESS"}))
    provider = make(script, sleeps, timeout=6.0)

    provider.status(HANDLE)

    assert script.requests[0].extensions["timeout"]["connect"] == 6.0


def test_a_passed_deadline_sends_nothing(sleeps: Sleeps) -> None:
    script = Script()
    provider = make(script, sleeps, monotonic=FakeMonotonic(200.0))
    provider.deadline = 200.0

    with pytest.raises(ProviderError) as caught:
        provider.submit(VEO, {"prompt": "p"})

    assert caught.value.code == "provider_timeout"
    assert script.requests == []


def test_no_backoff_sleep_overruns_the_deadline(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(503), httpx.Response(202, json={"status": "IN_PROGRESS"}))
    provider = make(script, sleeps, monotonic=FakeMonotonic(50.0))
    provider.deadline = 50.4  # the first backoff (0.5 s) would end after it

    with pytest.raises(ProviderError) as caught:
        provider.status(HANDLE)

    assert caught.value.code == "provider_timeout"
    assert caught.value.message == (
        "deadline reached while retrying the fal status call: "
        "HTTP 503: HTTP 503 Service Unavailable"
    )
    assert sleeps.calls == []
    assert len(script.requests) == 1


SECRET = "key-id-1234:very-secret-5678"


def test_the_key_never_appears_in_errors_reprs_or_logs(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {"detail": f"bad key {SECRET}", "error_type": f"auth {SECRET}"}
    script = Script(
        httpx.Response(401, json=echo),
        httpx.Response(422, json={"detail": [{"loc": ["body"], "msg": SECRET, "type": "x"}]}),
        httpx.Response(503, json=echo),
        httpx.Response(503, json=echo),
        httpx.Response(503, json=echo),
        httpx.Response(500, text=SECRET),
        httpx.ConnectError(f"cannot reach {SECRET}"),
        httpx.ConnectError(f"cannot reach {SECRET}"),
        httpx.ConnectError(f"cannot reach {SECRET}"),
        httpx.Response(422, text=SECRET),
    )
    provider = make(script, sleeps, key=SECRET)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = [repr(provider), str(provider)]

    for call in (
        lambda: provider.status(HANDLE),
        lambda: provider.submit(VEO, {}),
        lambda: provider.status(HANDLE),
        lambda: provider.submit(VEO, {}),
        lambda: provider.submit(VEO, {}),
    ):
        with pytest.raises((ProviderError, RefusedError)) as caught:
            call()
        seen += [
            str(caught.value),
            caught.value.message,
            str(caught.value.hint),
            repr(caught.value),
        ]
    seen.append(str(provider.result(HANDLE).error))

    assert len(seen) == 23
    for text in [*seen, caplog.text]:
        assert SECRET not in text
        assert "very-secret" not in text


@pytest.mark.parametrize("bad_key", ["", "  ", "key\nInjected: 1", "clé"])
def test_unusable_keys_are_refused_without_echoing_them(bad_key: str) -> None:
    with pytest.raises(ProviderError) as caught:
        FalQueueProvider(bad_key)

    assert caught.value.code == "provider_auth"
    if bad_key.strip():
        assert bad_key.strip() not in caught.value.message


def test_close_closes_the_client(sleeps: Sleeps) -> None:
    provider = make(Script(), sleeps)
    provider.close()

    with pytest.raises(RuntimeError):
        provider.status(HANDLE)


# --- Retry-After (429 and 503) ------------------------------------------------------------

NOW = 1_800_000_000.0  # the wall clock the date tests run at


def at_now(script: Script, sleeps: Sleeps, *, deadline: float | None = None) -> FalQueueProvider:
    provider = FalQueueProvider(
        "test-key",
        transport=httpx.MockTransport(script),
        sleep=sleeps,
        monotonic=lambda: 1000.0,
        now=lambda: NOW,
    )
    provider.deadline = deadline
    return provider


def http_date(seconds_from_now: float) -> str:
    from datetime import UTC, datetime
    from email.utils import format_datetime

    return format_datetime(datetime.fromtimestamp(NOW + seconds_from_now, UTC), usegmt=True)


IN_PROGRESS = httpx.Response(202, json={"status": "IN_PROGRESS"})


@pytest.mark.parametrize(
    ("header", "waited"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("600", 60.0),
        (http_date(7), 7.0),
        (http_date(-9), 0.0),
    ],
    ids=["seconds", "zero", "fraction", "capped-at-60", "http-date", "date-in-the-past"],
)
def test_status_429_waits_what_retry_after_says(header: str, waited: float, sleeps: Sleeps) -> None:
    script = Script(httpx.Response(429, headers={"retry-after": header}), IN_PROGRESS)
    provider = at_now(script, sleeps)

    assert provider.status(HANDLE) == ProviderStatus(state=ProviderState.IN_PROGRESS)
    assert sleeps.calls == [waited]


def test_status_503_retry_after_then_429_retry_after(sleeps: Sleeps) -> None:
    script = Script(
        httpx.Response(503, headers={"retry-after": http_date(2)}, text="<html>nginx</html>"),
        httpx.Response(429, headers={"Retry-After": "5"}),
        IN_PROGRESS,
    )
    provider = at_now(script, sleeps)

    assert provider.status(HANDLE).state is ProviderState.IN_PROGRESS
    assert sleeps.calls == [2.0, 5.0]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, headers={"retry-after": "9"}),  # only 429 and 503 carry it
        httpx.Response(429, headers={"retry-after": "soon"}),
        httpx.Response(429, headers={"retry-after": "-3"}),
        httpx.Response(429, headers={"retry-after": "nan"}),
        httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00"}),  # no zone
    ],
    ids=["500", "words", "negative", "nan", "zoneless-date"],
)
def test_an_unusable_retry_after_falls_back_to_our_backoff(
    answer: httpx.Response, sleeps: Sleeps
) -> None:
    provider = at_now(Script(answer, IN_PROGRESS), sleeps)

    assert provider.status(HANDLE).state is ProviderState.IN_PROGRESS
    assert sleeps.calls == [0.5]


def test_a_retry_after_past_the_deadline_ends_the_call_without_waiting(sleeps: Sleeps) -> None:
    script = Script(httpx.Response(429, headers={"retry-after": "30"}), IN_PROGRESS)
    provider = at_now(script, sleeps, deadline=1010.0)  # 10 s left

    with pytest.raises(ProviderError) as caught:
        provider.status(HANDLE)

    assert caught.value.code == "provider_timeout"
    assert caught.value.message == (
        "deadline reached while retrying the fal status call (fal asked to retry after 30 s): "
        "HTTP 429: HTTP 429 Too Many Requests"
    )
    assert sleeps.calls == []
    assert len(script.requests) == 1


def test_result_honours_retry_after(sleeps: Sleeps) -> None:
    script = Script(
        httpx.Response(429, headers={"retry-after": "4"}),
        httpx.Response(200, json={"video": {"url": "https://v3.fal.media/v.mp4"}}),
    )
    provider = at_now(script, sleeps)

    assert provider.result(HANDLE) == ProviderResult(video_url="https://v3.fal.media/v.mp4")
    assert sleeps.calls == [4.0]


def test_submit_honours_retry_after_only_where_no_second_job_can_result(sleeps: Sleeps) -> None:
    script = Script(
        httpx.Response(429, headers={"retry-after": "2"}),
        httpx.Response(503, headers={"retry-after": http_date(3)}, text="<html>nginx</html>"),
        ok_submit(),
    )
    provider = at_now(script, sleeps)

    assert provider.submit(VEO, {"prompt": "p"}).request_id == "r1"
    assert sleeps.calls == [2.0, 3.0]
    assert len(script.requests) == 3


# --- a 5xx at submit that names its request ------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_submit_5xx_with_a_request_id_is_followed_not_resubmitted(
    code: int, sleeps: Sleeps
) -> None:
    script = Script(
        httpx.Response(
            code,
            headers={"x-fal-request-id": "r-5xx", "retry-after": "1"},
            json={"detail": "Runner disconnected", "error_type": "runner_disconnected"},
        ),
        ok_submit(),
    )
    provider = make(script, sleeps)

    submission = provider.submit(VEO_I2V, {"prompt": "p"})

    base = "https://queue.fal.run/fal-ai/veo3.1/requests/r-5xx"
    assert (submission.request_id, submission.queue_position) == ("r-5xx", None)
    assert (submission.status_url, submission.response_url, submission.cancel_url) == (
        f"{base}/status",
        base,
        f"{base}/cancel",
    )
    assert submission.warning == (
        f"fal answered the submit with HTTP {code}: Runner disconnected (runner_disconnected) "
        "but named request r-5xx; the job is followed under that id"
    )
    assert len(script.requests) == 1
    assert sleeps.calls == []


def test_submit_2xx_naming_the_request_only_in_the_header(sleeps: Sleeps) -> None:
    answer = httpx.Response(200, json={"status": "IN_QUEUE"}, headers={"x-fal-request-id": "r-h"})
    provider = make(Script(answer), sleeps)

    submission = provider.submit(VEO, {"prompt": "p"})

    assert (submission.request_id, submission.warning) == ("r-h", None)


def test_the_fal_identity_follows_the_queue_url() -> None:
    assert FalQueueProvider("k", base_url="https://Queue.Example.com/").identity == (
        ProviderIdentity("fal", "https://queue.example.com")
    )
