"""The request log never carries a credential, wherever a client puts it.

Headers are never logged, but three values are (the path, the Idempotency-Key, the job):
a client that sends its token as the key, or in the path, must not see it in the log.
"""

from __future__ import annotations

import pytest

from tests.http.support import FN, Api, new_key, veo
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.http.access_log import REDACTED


def _pieces(secret: str) -> list[str]:
    """The secret's start, middle and end: no fragment of it may be logged either."""
    n = len(secret)
    return [secret[:12], secret[n // 2 - 6 : n // 2 + 6], secret[-12:]]


def _assert_absent(secret: str, lines: list[str]) -> None:
    text = "\n".join(lines)
    for piece in _pieces(secret):
        assert piece not in text, (piece, text)


def test_a_token_sent_as_the_idempotency_key_is_not_logged(api: Api, log_lines: list[str]) -> None:
    created = api.generate(api.token, veo())
    assert created.status_code == 200  # a valid key, so the request itself is served
    api.generate(api.token, veo())  # and its replay
    assert len(log_lines) == 2
    for line in log_lines:
        assert line.endswith(f"key={REDACTED}")
        assert f"user={DEMO_USER_ID} job={created.json()['job_id']}" in line
    _assert_absent(api.token, log_lines)


def test_a_token_in_the_path_is_not_logged(api: Api, log_lines: list[str]) -> None:
    assert api.request("GET", f"{FN}/{api.token}").status_code == 404
    assert api.request("GET", f"/x/{api.token[:40]}").status_code == 404  # a fragment
    assert f"GET {REDACTED} 404 " in log_lines[0]
    assert f"GET {REDACTED} 404 " in log_lines[1]
    _assert_absent(api.token, log_lines)


@pytest.mark.parametrize(
    "garbage", ["not-a-jwt-but-a-secret-1234567890", "s3cr3t-garbage", "eyJhbGciOiJub25lIn0.e30."]
)
def test_a_garbage_token_answered_401_is_not_logged_even_when_sent_as_the_key(
    api: Api, log_lines: list[str], garbage: str
) -> None:
    answer = api.request(
        "POST",
        f"{FN}/generate-video",
        token=garbage,
        json=veo(),
        headers={"Idempotency-Key": garbage, "apikey": garbage, "x-client-info": garbage},
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_token"
    assert garbage not in answer.text
    assert log_lines == [log_lines[0]] and log_lines[0].endswith(f"key={REDACTED}")
    _assert_absent(garbage, log_lines)


def test_an_apikey_used_as_the_key_is_not_logged(api: Api, log_lines: list[str]) -> None:
    anon = "sb_publishable_local-anon-key-0123456789"
    answer = api.request(
        "POST",
        f"{FN}/generate-video",
        json=veo(),
        headers={"apikey": anon, "Idempotency-Key": anon},
    )
    assert answer.status_code == 200
    assert log_lines[0].endswith(f"key={REDACTED}")
    _assert_absent(anon, log_lines)


def test_ordinary_keys_and_paths_are_still_logged(api: Api, log_lines: list[str]) -> None:
    key = new_key()
    api.generate(key, veo())
    api.request("GET", "/nope")
    assert log_lines[0].endswith(f"key={key}")
    assert "GET /nope 404 " in log_lines[1]


def test_a_json_body_without_its_content_type_is_read_as_json(api: Api) -> None:
    # What `curl -d '{…}'` sends (form-encoded by default): an Edge Function's req.json()
    # reads it, and so does serve.
    answer = api.request(
        "POST",
        f"{FN}/generate-video",
        content=b'{"model_id":"veo3.1","prompt":"curl","settings":{"duration":"4s"}}',
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    bad = api.request(
        "POST",
        f"{FN}/generate-video",
        content=b"prompt=curl",
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "malformed_json"
