"""Strings no store can hold, sent as JSON escapes: 400 before anything is charged.

JSON may spell a lone surrogate (`\\ud800`) or NUL (`\\u0000`); neither is storable text
(SQLite and psycopg refuse to encode the first, Postgres text refuses the second). The CLI
refuses such arguments with exit 2; the endpoint answers 400 `invalid_text`, not a 500.
"""

from __future__ import annotations

import pytest

from tests.http.support import FN, Api, balance, jobs_of, ledger, new_key
from videogen_cli.catalog import DEMO_USER_ID

BODIES = {
    "prompt": '{"model_id":"veo3.1","prompt":"a boat\\ud800","settings":{"duration":"4s"}}',
    "model_id": '{"model_id":"veo3.1\\udfff","prompt":"a boat","settings":{"duration":"4s"}}',
    "settings.resolution": (
        '{"model_id":"veo3.1","prompt":"a boat","settings":{"duration":"4s",'
        '"resolution":"720p\\ud800"}}'
    ),
    "image_url": (
        '{"model_id":"sora-2-i2v","prompt":"a boat","image_url":"https://x.test/\\ud800.png"}'
    ),
    "user_id": '{"model_id":"veo3.1","prompt":"a boat","user_id":"\\ud800"}',
}

# Where the surrogate sits in each field's value (1-based, as the message counts).
AT = {"prompt": 7, "model_id": 7, "settings.resolution": 5, "image_url": 16, "user_id": 1}


@pytest.mark.parametrize("field", sorted(BODIES))
def test_a_lone_surrogate_anywhere_is_400_and_nothing_moves(api: Api, field: str) -> None:
    answer = api.request(
        "POST",
        f"{FN}/generate-video",
        content=BODIES[field].encode(),
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": {
            "code": "invalid_text",
            "message": f"{field} is not valid text: a byte that is not UTF-8 at character "
            f"{AT[field]}",
            "hint": "send plain UTF-8 text (no NUL character)",
        }
    }
    assert balance(DEMO_USER_ID) == 100
    assert jobs_of(DEMO_USER_ID) == []


def test_a_nul_in_the_prompt_is_400_on_every_store_not_only_postgres(api: Api) -> None:
    answer = api.request(
        "POST",
        f"{FN}/generate-video",
        content=b'{"model_id":"veo3.1","prompt":"a\\u0000boat","settings":{"duration":"4s"}}',
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "invalid_text",
        "message": "prompt is not valid text: it contains a NUL character",
        "hint": "send plain UTF-8 text (no NUL character)",
    }
    assert [(e.kind.value, e.delta) for e in ledger(DEMO_USER_ID)] == [("grant", 100)]
