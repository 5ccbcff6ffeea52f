"""An endpoint does what the matching command does: one core, no second copy of a rule.

The same request with the same key through `videogen generate` and through
generate-video is one job, one charge; `videogen status` and get-video-status report one
state; a request the command refuses is refused by the endpoint with the same words.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.http.support import Api, balance, jobs_of, ledger, new_key, veo
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.cli.main import app


def cli(*args: str, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def cli_generate(key: str, prompt: str = "a paper boat", code: int = 0) -> dict[str, Any]:
    return cli(
        "generate", "--prompt", prompt, "--model", "veo3.1", "--duration", "4s",
        "--idempotency-key", key, code=code,
    )  # fmt: skip


def test_a_key_used_by_the_command_is_replayed_by_the_endpoint(api: Api) -> None:
    key = new_key()
    made = cli_generate(key)
    answer = api.generate(key, veo())
    assert answer.status_code == 200 and answer.headers["x-idempotent-replay"] == "true"
    assert answer.json() == {"job_id": made["job_id"], "status": "pending", "credits_used": 16}
    assert balance(DEMO_USER_ID) == 84 and jobs_of(DEMO_USER_ID) == [made["job_id"]]


def test_a_key_used_by_the_endpoint_is_replayed_by_the_command(api: Api) -> None:
    key = new_key()
    job_id = api.generate(key, {**veo(), "settings": {"duration": 4}}).json()["job_id"]
    again = cli_generate(key)
    assert (again["job_id"], again["replayed"], again["balance"]) == (job_id, True, 84)
    assert [e.kind.value for e in ledger(DEMO_USER_ID)] == ["grant", "charge"]


def test_a_key_reused_for_another_request_is_refused_by_both(api: Api) -> None:
    key = new_key()
    api.generate(key, veo())
    refused = cli_generate(key, prompt="another boat", code=4)["error"]
    answer = api.generate(key, veo("another boat")).json()["error"]
    assert (answer["code"], answer["message"]) == (refused["code"], refused["message"])


@pytest.mark.parametrize("prompt", ["a paper boat", "sim:fail a boat", "sim:requeue a boat"])
def test_status_and_get_video_status_report_the_same_state(api: Api, prompt: str) -> None:
    job_id = api.generate(new_key(), veo(prompt)).json()["job_id"]
    for _ in range(300):  # each side syncs in turn: both see every step the same way
        by_command = cli("status", job_id)
        by_endpoint = api.status(job_id).json()
        if by_command["status"] in ("completed", "failed"):
            break
    fields = ("status", "video_url", "thumbnail_url", "error", "credits_used", "refunded_credits")
    assert {k: by_command[k] for k in fields} == {k: by_endpoint[k] for k in fields}
    assert by_endpoint["status"] == ("failed" if "fail" in prompt else "completed")
    refunds = [e for e in ledger(DEMO_USER_ID) if e.kind.value == "refund"]
    assert len(refunds) == (1 if "fail" in prompt else 0)


@pytest.mark.parametrize(
    ("flags", "body"),
    [
        (["--duration", "5s"], {"settings": {"duration": "5s"}}),
        (["--model", "sora-9"], {"model_id": "sora-9"}),
        (["--model", "veo3.1-i2v"], {"model_id": "veo3.1-i2v"}),
        (["--aspect-ratio", "1:1"], {"settings": {"aspect_ratio": "1:1"}}),
    ],
)
def test_a_request_the_command_refuses_the_endpoint_refuses_with_the_same_words(
    api: Api, flags: list[str], body: dict[str, Any]
) -> None:
    args = ["generate", "--prompt", "a paper boat", "--model", "veo3.1", *flags]
    result = CliRunner().invoke(app, [*args, "--idempotency-key", new_key(), "--json"])
    by_command = json.loads(result.stdout)["error"]
    answer = api.generate(new_key(), {**veo(), **body})
    by_endpoint = answer.json()["error"]
    assert (by_endpoint["code"], by_endpoint["message"].replace("image_url", "--image-url")) == (
        by_command["code"],
        by_command["message"],
    )
    assert (result.exit_code, answer.status_code) in ((2, 400), (3, 404))
    assert balance(DEMO_USER_ID) == 100
