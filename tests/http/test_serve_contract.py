"""Property-based contract tests: schemathesis generates requests from the served
openapi.json (valid and invalid ones) and checks each answer against that same document:
never a 500, never a status, header or body the document does not declare.

Driven through hypothesis directly (`APIOperation.as_strategy`): schemathesis's own
pytest plugin does not run under the pytest this project uses. Bounded by
`max_examples`, not by time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.http.support import FN, balance, token_for
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.config import load_settings
from videogen_cli.http.app import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
OPERATIONS = ["generateVideo", "getVideoStatus", "listModels", "health"]


@pytest.fixture
def contract(isolated_env: Path) -> Iterator[Any]:
    app = create_app(load_settings(), log=lambda _: None)
    yield schemathesis.openapi.from_asgi(f"{FN}/openapi.json", app)
    app.state.pool.close()


def test_the_contract_names_every_operation(contract: Any) -> None:
    found = sorted(op.ok().definition.raw["operationId"] for op in contract.get_all_operations())
    assert found == sorted(OPERATIONS)


@pytest.mark.parametrize(
    ("operation_id", "mode"),
    [(op, GenerationMode.POSITIVE) for op in OPERATIONS]
    # Invalid inputs exist only where there are inputs.
    + [(op, GenerationMode.NEGATIVE) for op in ("generateVideo", "getVideoStatus")],
)
def test_no_generated_request_gets_a_500_or_an_undocumented_answer(
    contract: Any, operation_id: str, mode: GenerationMode
) -> None:
    operation = contract.find_operation_by_id(operation_id)
    bearer = {"Authorization": f"Bearer {token_for(DEMO_USER_ID)}"}
    seen: set[int] = set()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=bearer, checks=CHECKS)
        seen.add(response.status_code)

    check()
    assert 500 not in seen and seen, seen


def test_generated_requests_for_a_real_model_charge_only_what_they_answer(contract: Any) -> None:
    """Random prompts and settings on a model that exists, each under a fresh key: every
    answer is documented, and the balance moves by exactly what the 200s say."""
    operation = contract.find_operation_by_id("generateVideo")
    bearer = {"Authorization": f"Bearer {token_for(DEMO_USER_ID)}"}
    charged: list[int] = []

    def on_a_real_model(case: Any) -> Any:
        case.body = {**case.body, "model_id": "sora-2-t2v"}
        case.body.pop("user_id", None)
        case.headers = {**(case.headers or {}), "Idempotency-Key": str(uuid.uuid4())}
        return case

    @given(case=operation.as_strategy().map(on_a_real_model))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=bearer, checks=CHECKS)
        if response.status_code == 200:
            charged.append(response.json()["credits_used"])

    check()
    assert balance(DEMO_USER_ID) == 100 - sum(charged)


def test_without_a_token_the_answer_is_a_documented_401(contract: Any) -> None:
    operation = contract.find_operation_by_id("generateVideo")

    @given(case=operation.as_strategy())
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k != "Authorization"}
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == 401

    check()


def test_the_document_is_valid_openapi_3_1_with_every_documented_status(isolated_env: Path) -> None:
    from openapi_spec_validator import validate

    from tests.http.support import Api

    api = Api(create_app(load_settings(), log=lambda _: None), token="")
    response = api.request("GET", f"{FN}/openapi.json", auth=False)
    assert response.status_code == 200
    doc = response.json()
    validate(doc)  # raises on an invalid document
    assert doc["openapi"].startswith("3.1.")
    assert doc["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A user token (HS256, `sub` = user id). Sandbox: `videogen token`.",
        }
    }
    generate = doc["paths"]["/functions/v1/generate-video"]["post"]
    assert generate["security"] == [{"HTTPBearer": []}]
    (key,) = generate["parameters"]
    assert (key["name"], key["in"], key["required"]) == ("Idempotency-Key", "header", True)
    errors = {
        status: answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for status, answer in generate["responses"].items()
        if status != "200"
    }
    assert errors == {
        **dict.fromkeys(("400", "401", "402", "403", "404", "409", "422", "500"), "ErrorResponse"),
        "502": "SubmissionFailedResponse",
        "503": "ErrorResponse",
    }
    assert set(generate["responses"]["200"]["headers"]) == {
        "X-Idempotent-Replay",
        "Idempotent-Replayed",
    }
    status = doc["paths"]["/functions/v1/get-video-status"]["get"]
    assert set(status["responses"]) == {"200", "400", "401", "404", "500", "503"}
    assert doc["components"]["schemas"]["ErrorDetail"]["required"] == ["code", "message", "hint"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "/healthz" in doc["paths"] and "security" not in doc["paths"]["/healthz"]["get"]
