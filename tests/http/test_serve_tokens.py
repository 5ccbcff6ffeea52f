"""`videogen token`: a Supabase-shaped user token, signed with the secret `serve` checks."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import jwt
import pytest
from typer.testing import CliRunner

from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.cli.main import app

USER = "2f6d0c1e-58a4-4b8e-9d61-0a4c1f9e7b32"
SECRET = "a-project-jwt-secret-of-32-chars-or-more"
REAL_BACKEND = {"VIDEOGEN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "FAL_KEY": "k"}


def token(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["token", *args])
    assert result.exit_code == code, result.output
    return result


def claims(signed: str, secret: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        signed, secret, algorithms=["HS256"], audience="authenticated"
    )
    return decoded


def test_sandbox_token_is_for_the_demo_user_with_a_secret_made_once(isolated_env: Path) -> None:
    first = token().stdout.strip()
    secret_file = isolated_env / "jwt-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    got = claims(first, secret)
    assert (got["sub"], got["role"], got["exp"] - got["iat"]) == (
        DEMO_USER_ID, "authenticated", 3600,
    )  # fmt: skip
    token("--user", USER)
    assert secret_file.read_text().strip() == secret  # created once, then reused
    assert secret not in first


def test_json_names_user_and_expiry(isolated_env: Path) -> None:
    out = json.loads(token("--user", USER.upper(), "--ttl", "60", "--json").stdout)
    assert set(out) == {"token", "user_id", "expires_at"} and out["user_id"] == USER
    secret = (isolated_env / "jwt-secret").read_text().strip()
    assert claims(out["token"], secret)["sub"] == USER


def test_supabase_jwt_secret_signs_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)
    assert claims(token().stdout.strip(), SECRET)["sub"] == DEMO_USER_ID


def test_real_backend_without_a_secret_is_exit_5_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in REAL_BACKEND.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VIDEOGEN_USER_ID", USER)
    result = token(code=5)
    assert result.stdout == ""
    assert result.stderr == (
        "error: SUPABASE_JWT_SECRET is not set, so no user token can be signed or checked\n"
        "hint: export SUPABASE_JWT_SECRET (Supabase: Project Settings > API > JWT secret)\n"
    )
    served = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert served.exit_code == 5 and "SUPABASE_JWT_SECRET is not set" in served.stderr
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)
    assert claims(token().stdout.strip(), SECRET)["sub"] == USER


def test_real_backend_needs_a_user(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**REAL_BACKEND, "SUPABASE_JWT_SECRET": SECRET}.items():
        monkeypatch.setenv(name, value)
    out = json.loads(token("--json", code=2).stdout)
    assert out == {
        "error": {
            "code": "invalid_input",
            "message": "no user given",
            "hint": "pass --user UUID or export VIDEOGEN_USER_ID=<uuid>",
        }
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "bob"], "error: user id 'bob' is not a UUID\n"),
        (["--ttl", "0"], "error: --ttl must be between 1 and 2592000 seconds, not 0\n"),
        (["--ttl", "2592001"], "error: --ttl must be between 1 and 2592000 seconds, not 2592001\n"),
    ],
)
def test_bad_input_is_exit_2(args: list[str], message: str) -> None:
    assert token(*args, code=2).stderr.startswith(message)
