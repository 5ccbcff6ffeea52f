"""Every row of the status table (README "For the iOS team"), with exact JSON bodies, and
balances and ledger rows read back from the store. The app runs in-process through
httpx's ASGI transport, on the sandbox with the simulator (VIDEOGEN_SIM_SPEED=1000).
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.http.support import (
    FN,
    SWIFT_HEADERS,
    Api,
    balance,
    grant,
    jobs_of,
    ledger,
    new_key,
    token_for,
    veo,
)
from videogen_cli.bootstrap import open_provider, open_store
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.config import load_settings
from videogen_cli.core.jobs import JobService
from videogen_cli.domain import ProviderHandle, ProviderIdentity, Submission
from videogen_cli.http.app import create_app
from videogen_cli.http.tokens import HS256Verifier, load_secret, mint
from videogen_cli.ports import VideoProvider

REPLAY = {"x-idempotent-replay": "true", "idempotent-replayed": "true"}
KEY_HINT = "send a new UUID as Idempotency-Key for each new request, and the same one to retry it"
TOKEN_HINT = "send Authorization: Bearer <user token> (a sandbox token: videogen token)"


def error(code: str, message: str, hint: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint}}


MISSING_KEY = error("idempotency_key_missing", "the Idempotency-Key header is required", KEY_HINT)
MODELS_HINT = "GET /functions/v1/models lists the models"
JOB_HINT = "send the job_id generate-video returned"


def replay_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k in REPLAY}


def wait_terminal(api: Api, job_id: str) -> dict[str, Any]:
    for _ in range(200):
        body: dict[str, Any] = api.status(job_id).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


# --- 200 and replays ------------------------------------------------------------------------
def test_generate_charges_once_and_replays_the_first_answer_byte_for_byte(api: Api) -> None:
    key = new_key()
    first = api.generate(key, veo())
    assert first.status_code == 200
    body = first.json()
    assert body == {"job_id": body["job_id"], "status": "pending", "credits_used": 16}
    assert replay_headers(first) == {}
    # The same request spelled differently (key order, duration as a number) is the same.
    again = api.generate(key, {"settings": {"duration": 4}, "prompt": " a paper boat ", **{
        "model_id": "veo3.1"}})  # fmt: skip
    wait_terminal(api, body["job_id"])  # completed since: the replay still says pending
    later = api.generate(key, veo())
    for replay in (again, later):
        assert replay.status_code == 200
        assert replay.content == first.content
        assert replay_headers(replay) == REPLAY
    assert balance(DEMO_USER_ID) == 84
    assert [(e.kind.value, e.delta, e.job_id) for e in ledger(DEMO_USER_ID)] == [
        ("grant", 100, None),
        ("charge", -16, body["job_id"]),
    ]


def test_status_follows_the_job_to_completed(api: Api) -> None:
    job_id = api.generate(new_key(), veo()).json()["job_id"]
    done = wait_terminal(api, job_id)
    assert done == {
        "job_id": job_id,
        "status": "completed",
        "video_url": done["video_url"],
        "thumbnail_url": None,
        "error": None,
        "queue_position": None,
        "credits_used": 16,
        "refunded_credits": 0,
    }
    assert done["video_url"].startswith("https://sandbox.fal.invalid/")


def test_a_failed_generation_is_refunded_once_and_reported(api: Api) -> None:
    job_id = api.generate(new_key(), veo("sim:fail a boat")).json()["job_id"]
    done = wait_terminal(api, job_id)
    assert (done["status"], done["refunded_credits"], done["video_url"]) == ("failed", 16, None)
    assert done["error"] == "Runner disconnected"
    assert api.status(job_id).json() == done  # terminal: nothing moves again
    assert balance(DEMO_USER_ID) == 100
    kinds = [(e.kind.value, e.delta) for e in ledger(DEMO_USER_ID) if e.job_id == job_id]
    assert kinds == [("charge", -16), ("refund", 16)]


def test_models_lists_the_active_catalog_with_its_settings(api: Api) -> None:
    response = api.request("GET", f"{FN}/models")
    assert response.status_code == 200
    models = response.json()["models"]
    assert [m["slug"] for m in models] == ["sora-2-i2v", "sora-2-t2v", "veo3.1", "veo3.1-i2v"]
    assert models[2] == {
        "id": "6f1c2a10-0000-4000-a000-000000000003",
        "slug": "veo3.1",
        "name": "Veo 3.1 text-to-video",
        "credits_per_second": 4,
        "requires_image": False,
        "settings": {
            "aspect_ratio": {"type": "string", "allowed": ["16:9", "9:16"], "default": "16:9"},
            "duration": {"type": "string", "allowed": ["4s", "6s", "8s"], "default": "8s"},
            "resolution": {"type": "string", "allowed": ["720p", "1080p", "4k"], "default": "720p"},
        },
    }


def test_model_may_be_named_by_id(api: Api) -> None:
    body = {**veo(), "model_id": "6f1c2a10-0000-4000-a000-000000000003"}
    assert api.generate(new_key(), body).status_code == 200


def test_healthz_says_which_backend_and_provider_answer(api: Api) -> None:
    response = api.request("GET", "/healthz", auth=False)
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "backend": "sandbox", "provider": "simulator"},
    )


# --- 400 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, MISSING_KEY),
        ("", MISSING_KEY),
        ("short", error(
            "invalid_idempotency_key",
            "idempotency key must be 8–255 printable characters without spaces", KEY_HINT)),
        ("with spaces in it", error(
            "invalid_idempotency_key",
            "idempotency key must be 8–255 printable characters without spaces", KEY_HINT)),
        ("k" * 256, error(
            "invalid_idempotency_key",
            "idempotency key must be 8–255 printable characters without spaces", KEY_HINT)),
    ],
)  # fmt: skip
def test_missing_or_malformed_key_is_400_and_charges_nothing(
    api: Api, key: str | None, expected: dict[str, Any]
) -> None:
    response = api.generate(key, veo())
    assert (response.status_code, response.json()) == (400, expected)
    assert balance(DEMO_USER_ID) == 100 and jobs_of(DEMO_USER_ID) == []


def test_the_quoted_key_of_the_ietf_draft_is_the_same_key(api: Api) -> None:
    first = api.generate("order-1234", veo())
    quoted = api.generate('"order-1234"', veo())
    assert quoted.content == first.content and replay_headers(quoted) == REPLAY


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**veo(), "settings": {"fps": 24}}, error(
            "invalid_input", "model veo3.1 does not accept fps",
            "it accepts: aspect_ratio, duration, resolution")),
        ({**veo(), "settings": {"duration": "5s"}}, error(
            "invalid_input", "duration '5s' is not allowed for veo3.1",
            "choose one of: 4s, 6s, 8s")),
        ({**veo(), "prompt": "   "}, error(
            "invalid_input", "the prompt is empty", 'pass prompt "what the video shows"')),
        ({**veo(), "model_id": "veo3.1-i2v"}, error(
            "invalid_input",
            "model veo3.1-i2v turns an image into a video and needs image_url",
            "pass image_url https://… (the first frame)")),
        ({"model_id": "veo3.1"}, error(
            "invalid_input", "prompt: Field required",
            "the request's schema is at /functions/v1/openapi.json")),
        ({**veo(), "settings": {"duration": True}}, error(
            "invalid_input",
            "settings.duration: Input should be a valid integer or Input should be a valid string",
            "the request's schema is at /functions/v1/openapi.json")),
        ({**veo(), "colour": "red"}, error(
            "invalid_input", "colour: Extra inputs are not permitted",
            "the request's schema is at /functions/v1/openapi.json")),
        ([1, 2], error(
            "invalid_input", "body: Input should be a valid dictionary or object to extract "
            "fields from", "the request's schema is at /functions/v1/openapi.json")),
    ],
)  # fmt: skip
def test_bad_fields_and_settings_are_400_before_any_charge(
    api: Api, body: Any, expected: dict[str, Any]
) -> None:
    response = api.generate(new_key(), body)
    assert (response.status_code, response.json()) == (400, expected)
    assert balance(DEMO_USER_ID) == 100 and jobs_of(DEMO_USER_ID) == []


def test_malformed_json_is_400(api: Api) -> None:
    response = api.request(
        "POST",
        f"{FN}/generate-video",
        content=b'{"model_id": "veo3.1",',
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()) == (
        400,
        error("malformed_json", "the body is not valid JSON", "send a JSON object"),
    )


@pytest.mark.parametrize("job_id", ["not-a-uuid", "12345"])
def test_malformed_job_id_is_400(api: Api, job_id: str) -> None:
    response = api.status(job_id)
    assert (response.status_code, response.json()) == (
        400,
        error(
            "invalid_job_id",
            f"job_id {job_id!r} is not a UUID",
            "send the job_id generate-video returned",
        ),
    )


def test_missing_job_id_is_400(api: Api) -> None:
    response = api.request("GET", f"{FN}/get-video-status")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_job_id")


# --- 401 ------------------------------------------------------------------------------------
def _signed(claims: dict[str, Any], secret: str | None = None) -> str:
    return jwt.encode(claims, secret or load_secret(load_settings()), algorithm="HS256")


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing Authorization: Bearer <token>"),
        ("Basic dXNlcjpwdw==", "missing Authorization: Bearer <token>"),
        ("Bearer not.a.jwt", "the token is not valid (DecodeError)"),
        ("expired", "the token has expired"),
        ("wrong-secret", "the token is not valid (InvalidSignatureError)"),
        ("no-exp", "the token is not valid (MissingRequiredClaimError)"),
        ("sub-not-uuid", "the token's sub is not a user id (UUID)"),
        ("other-audience", "the token's audience is not 'authenticated'"),
        ("none-alg", "the token is not valid (InvalidAlgorithmError)"),
    ],
)
def test_missing_invalid_or_expired_token_is_401_on_every_endpoint(
    api: Api, authorization: str | None, message: str
) -> None:
    now = int(time.time())
    good = {"sub": DEMO_USER_ID, "aud": "authenticated", "exp": now + 60}
    tokens = {
        "expired": _signed({**good, "exp": now - 1}),
        "wrong-secret": _signed(good, "another-secret-of-enough-length-32b"),
        "no-exp": _signed({"sub": DEMO_USER_ID}),
        "sub-not-uuid": _signed({**good, "sub": "admin"}),
        "other-audience": _signed({**good, "aud": "service"}),
        "none-alg": jwt.encode(good, "", algorithm="none"),
    }
    if authorization in tokens:
        authorization = f"Bearer {tokens[authorization]}"
    headers = {} if authorization is None else {"Authorization": authorization}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{FN}/generate-video", {"json": veo(), "headers": {"Idempotency-Key": "k" * 9}}),
        ("GET", f"{FN}/get-video-status", {"params": {"job_id": str(uuid.uuid4())}}),
        ("GET", f"{FN}/models", {}),
    ]
    for method, path, kw in calls:
        kw_headers = {**kw.pop("headers", {}), **headers}
        response = api.request(method, path, auth=False, headers=kw_headers, **kw)
        assert response.status_code == 401
        assert response.json() == error("invalid_token", message, TOKEN_HINT)
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert balance(DEMO_USER_ID) == 100


def test_401_comes_before_any_other_problem_of_the_request(api: Api) -> None:
    response = api.request("POST", f"{FN}/generate-video", auth=False, content=b"{oops")
    assert response.status_code == 401


# --- 402 ------------------------------------------------------------------------------------
def test_insufficient_credits_is_402_and_nothing_is_charged(api: Api) -> None:
    user = str(uuid.uuid4())
    grant(user, 10)
    key = new_key()
    response = api.generate(key, veo(), token=token_for(user))
    assert (response.status_code, response.json()) == (
        402,
        error(
            "insufficient_credits",
            "insufficient credits: the job costs 16, the balance is 10",
            "grant credits to the user or choose a shorter duration",
        ),
    )
    assert balance(user) == 10 and jobs_of(user) == []
    # Not stored: the same key works once the user has the credits.
    grant(user, 6)
    assert api.generate(key, veo(), token=token_for(user)).status_code == 200
    assert balance(user) == 0


def test_a_user_without_a_credits_account_gets_402(api: Api) -> None:
    user = str(uuid.uuid4())
    response = api.generate(new_key(), veo(), token=token_for(user))
    assert (response.status_code, response.json()) == (
        402,
        error(
            "insufficient_credits",
            f"user {user} not found: this user has no credits yet",
            "credits are added with: videogen grant --user <user id> --credits N",
        ),
    )


# --- 403 ------------------------------------------------------------------------------------
def test_a_body_user_id_other_than_the_tokens_is_403(api: Api) -> None:
    response = api.generate(new_key(), {**veo(), "user_id": str(uuid.uuid4())})
    assert (response.status_code, response.json()) == (
        403,
        error(
            "user_mismatch",
            "user_id is not the user of the token",
            "omit user_id: the token says who you are",
        ),
    )
    assert balance(DEMO_USER_ID) == 100
    not_a_uuid = api.generate(new_key(), {**veo(), "user_id": "someone-else"})
    assert not_a_uuid.status_code == 403
    same = api.generate(new_key(), {**veo(), "user_id": DEMO_USER_ID.upper()})
    assert same.status_code == 200


# --- 404 ------------------------------------------------------------------------------------
def test_unknown_model_is_404(api: Api) -> None:
    response = api.generate(new_key(), {**veo(), "model_id": "sora-9"})
    assert (response.status_code, response.json()) == (
        404,
        error("model_not_found", "model 'sora-9' not found", MODELS_HINT),
    )  # fmt: skip


def test_another_users_job_is_answered_exactly_like_an_unknown_job(api: Api) -> None:
    job_id = api.generate(new_key(), veo()).json()["job_id"]
    stranger = token_for(str(uuid.uuid4()))
    theirs = api.status(job_id, token=stranger)
    assert (theirs.status_code, theirs.json()) == (
        404,
        error("job_not_found", "job not found", JOB_HINT),
    )  # fmt: skip
    unknown = api.status(str(uuid.uuid4()))
    assert (unknown.status_code, unknown.content) == (404, theirs.content)
    assert dict(unknown.headers) | {"content-length": "x"} == dict(theirs.headers) | {
        "content-length": "x"
    }


def test_unknown_path_is_404_and_wrong_method_405_in_our_shape(api: Api) -> None:
    response = api.request("GET", "/functions/v1/nope")
    assert (response.status_code, response.json()) == (
        404,
        error("not_found", "no endpoint /functions/v1/nope",
              "the endpoints are described at /functions/v1/openapi.json"),
    )  # fmt: skip
    response = api.request("GET", f"{FN}/generate-video")
    assert (response.status_code, response.json()) == (
        405,
        error("method_not_allowed", "GET is not allowed on /functions/v1/generate-video",
              "the endpoints are described at /functions/v1/openapi.json"),
    )  # fmt: skip
    assert response.headers["allow"] == "POST"


# --- 409: a key still being processed, and a slow submit holding up nobody -------------------
class GatedProvider:
    """The real (simulated) fal adapter, whose submit waits for the test to open a gate."""

    def __init__(self, inner: VideoProvider, gate: threading.Event, entered: threading.Event):
        self._inner = inner
        self._gate = gate
        self._entered = entered
        self.name = inner.name
        # (getattr: the adapters gain `identity` in a concurrent change of the seams)
        self.identity: ProviderIdentity = getattr(
            inner, "identity", ProviderIdentity("simulator", "tests")
        )
        self.deadline = inner.deadline

    def submit(self, endpoint_id: str, arguments: dict[str, object]) -> Submission:
        self._entered.set()
        assert self._gate.wait(30)
        return self._inner.submit(endpoint_id, arguments)

    def status(self, handle: ProviderHandle) -> Any:
        return self._inner.status(handle)

    def result(self, handle: ProviderHandle) -> Any:
        return self._inner.result(handle)

    def cancel(self, handle: ProviderHandle) -> str:
        return self._inner.cancel(handle)

    def close(self) -> None:
        self._inner.close()


def test_a_key_mid_submit_is_409_and_a_slow_submit_holds_up_no_status_call(
    isolated_env: Path,
) -> None:
    settings = load_settings()
    gate, entered = threading.Event(), threading.Event()
    app = create_app(
        settings,
        service_factory=lambda: JobService(
            open_store(settings), lambda: GatedProvider(open_provider(settings), gate, entered)
        ),
        log=lambda _: None,
    )
    api = Api(app, mint(load_secret(settings), DEMO_USER_ID, 600))
    gate.set()
    done_id = api.generate(new_key(), veo()).json()["job_id"]
    gate.clear()
    entered.clear()
    key = new_key()
    first: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: first.append(api.generate(key, veo())))
    worker.start()
    try:
        assert entered.wait(30)  # the first request is charged and stuck in fal's submit
        busy = api.generate(key, veo())
        assert (busy.status_code, busy.json()) == (
            409,
            error(
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed",
                "retry with the same key in a moment: it then gets the first answer",
            ),
        )
        assert busy.headers["retry-after"] == "1"
        assert api.status(done_id).status_code == 200  # not held up by the stuck submit
        assert balance(DEMO_USER_ID) == 68  # two jobs charged, the second once
    finally:
        gate.set()
        worker.join(30)
        app.state.pool.close()
    assert first[0].status_code == 200
    replay = api.generate(key, veo())
    assert replay.content == first[0].content and replay_headers(replay) == REPLAY
    assert len(jobs_of(DEMO_USER_ID)) == 2


def test_twenty_concurrent_posts_with_one_key_make_one_job_and_one_charge(api: Api) -> None:
    key = new_key()
    call = ("POST", f"{FN}/generate-video", {"json": veo(), "headers": {"Idempotency-Key": key}})
    answers = api.many([call] * 20)
    ok = [a for a in answers if a.status_code == 200]
    assert ok and all(a.status_code in (200, 409) for a in answers)
    assert len({a.content for a in ok}) == 1
    assert sum(1 for a in ok if not replay_headers(a)) <= 1
    assert balance(DEMO_USER_ID) == 84
    assert [e.kind.value for e in ledger(DEMO_USER_ID)] == ["grant", "charge"]
    assert len(jobs_of(DEMO_USER_ID)) == 1
    # Each request had a JobService (one database connection) of its own, given back after.
    assert 1 < api.app.state.pool.opened <= 20


def test_requests_one_after_another_reuse_one_service(api: Api) -> None:
    for _ in range(5):
        assert api.request("GET", f"{FN}/models").status_code == 200
        assert api.status(str(uuid.uuid4())).status_code == 404
    assert api.app.state.pool.opened == 1


# --- 422 ------------------------------------------------------------------------------------
def test_a_key_reused_with_another_request_is_422(api: Api) -> None:
    key = new_key()
    assert api.generate(key, veo()).status_code == 200
    response = api.generate(key, veo("another boat"))
    assert (response.status_code, response.json()) == (
        422,
        error(
            "idempotency_key_reused",
            "this idempotency key was first used with a different request",
            "use a new Idempotency-Key for a new request",
        ),
    )
    # The fingerprint covers the user: another user with the same key is refused too.
    user = str(uuid.uuid4())
    grant(user, 100)
    assert api.generate(key, veo(), token=token_for(user)).status_code == 422
    assert balance(DEMO_USER_ID) == 84 and balance(user) == 100


# --- 502 ------------------------------------------------------------------------------------
def test_a_refused_submission_is_502_with_the_job_refunded_and_replayed_as_is(api: Api) -> None:
    key = new_key()
    first = api.generate(key, veo("sim:refuse a boat"))
    assert first.status_code == 502
    job_id = first.json()["job_id"]
    assert first.json() == {
        **error(
            "submission_failed",
            "submission failed: prompt: The content could not be processed because it "
            "contained material flagged by a content checker. (content_policy_violation)",
            "the credits were refunded; fix the request and send it with a new Idempotency-Key",
        ),
        "job_id": job_id,
    }
    replay = api.generate(key, veo("sim:refuse a boat"))
    assert (replay.status_code, replay.content) == (502, first.content)
    assert replay_headers(replay) == REPLAY
    assert balance(DEMO_USER_ID) == 100
    assert [(e.kind.value, e.delta) for e in ledger(DEMO_USER_ID) if e.job_id == job_id] == [
        ("charge", -16),
        ("refund", 16),
    ]
    status = api.status(job_id).json()
    assert (status["status"], status["refunded_credits"]) == ("failed", 16)


# --- 503 and 500 ----------------------------------------------------------------------------
def test_an_unusable_backend_is_503(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = isolated_env.parent / "a-file"
    blocker.write_text("not a folder")
    secret = "a-test-secret-that-is-long-enough-for-hs256"
    monkeypatch.setenv("VIDEOGEN_HOME", str(blocker / "home"))
    app = create_app(load_settings(), verifier=HS256Verifier(secret), log=lambda _: None)
    api = Api(app, mint(secret, DEMO_USER_ID, 60))
    response = api.request("GET", f"{FN}/models")
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "backend_unavailable"
    assert body["message"].startswith("cannot open the sandbox database")


def test_a_bug_is_500_with_a_short_message_and_no_traceback(isolated_env: Path) -> None:
    def broken() -> JobService:
        raise RuntimeError("secret detail /etc/passwd")

    lines: list[str] = []
    settings = load_settings()
    app = create_app(settings, service_factory=broken, log=lines.append)
    api = Api(app, mint(load_secret(settings), DEMO_USER_ID, 60))
    response = api.request("GET", f"{FN}/models")
    assert (response.status_code, response.json()) == (
        500,
        error(
            "internal_error",
            "internal error (RuntimeError)",
            "the server log has the request; report it with the time of the request",
        ),
    )
    assert response.headers["access-control-allow-origin"] == "*"
    assert lines[-1].endswith("error=RuntimeError")


# --- CORS, supabase-swift, the log ------------------------------------------------------------
@pytest.mark.parametrize("path", [f"{FN}/generate-video", f"{FN}/get-video-status", "/x"])
def test_preflight_is_204_with_supabases_allow_headers(api: Api, path: str) -> None:
    response = api.request(
        "OPTIONS",
        path,
        auth=False,
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert (response.status_code, response.content) == (204, b"")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == (
        "authorization, x-client-info, apikey, content-type, idempotency-key"
    )
    assert response.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"


def test_every_answer_allows_any_origin_errors_included(api: Api) -> None:
    answers = [
        api.generate(new_key(), veo()),
        api.generate(None, veo()),
        api.request("GET", f"{FN}/models", auth=False),
        api.request("GET", "/nope"),
        api.request("GET", "/healthz"),
    ]
    assert [a.status_code for a in answers] == [200, 400, 401, 404, 200]
    for answer in answers:
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "Idempotent-Replayed" in answer.headers["access-control-expose-headers"]


def test_a_client_sending_supabase_swifts_headers_works(api: Api) -> None:
    headers = {**SWIFT_HEADERS, "Idempotency-Key": new_key()}
    created = api.request("POST", f"{FN}/generate-video", json=veo(), headers=headers)
    assert created.status_code == 200
    job_id = created.json()["job_id"]
    # functions.invoke sends POST by default; the app reads status with method: .get.
    status = api.request(
        "GET", f"{FN}/get-video-status", params={"job_id": job_id}, headers=SWIFT_HEADERS
    )
    assert status.status_code == 200 and status.json()["job_id"] == job_id


def test_one_log_line_per_request_with_user_job_and_key_and_no_token(
    api: Api, log_lines: list[str]
) -> None:
    key = new_key()
    job_id = api.generate(key, veo()).json()["job_id"]
    api.status(job_id)
    api.request("GET", f"{FN}/models", auth=False)
    api.request("GET", f"{FN}/models", token="eyJhbGciOiJIUzI1NiJ9.forged.signature")
    assert len(log_lines) == 4
    assert "POST /functions/v1/generate-video 200 " in log_lines[0]
    assert log_lines[0].endswith(f"user={DEMO_USER_ID} job={job_id} key={key}")
    assert "GET /functions/v1/get-video-status 200 " in log_lines[1]
    assert f"job={job_id}" in log_lines[1]
    assert "GET /functions/v1/models 401 " in log_lines[2]
    assert "GET /functions/v1/models 401 " in log_lines[3]
    for line in log_lines:
        assert api.token not in line and "Bearer" not in line and "forged" not in line
