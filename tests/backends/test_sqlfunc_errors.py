"""SQLSTATE / PostgREST code -> videogen error, shared by both SQL-function stores."""

from __future__ import annotations

import subprocess
import sys

import pytest

from videogen_cli.errors import (
    BackendError,
    NotFoundError,
    RefusedError,
    UsageError,
    VideogenError,
)
from videogen_cli.storage.sqlfunc import MIGRATION_HINT, error_from_sqlstate, parse_ts


def translate(code: str | None, message: str = "", detail: str | None = None) -> VideogenError:
    return error_from_sqlstate(
        code,
        message,
        detail,
        "the fix",
        backend="supabase",
        auth_hint="check the key",
        unavailable_hint="check SUPABASE_URL",
        secrets=("sb_secret_abc123",),
    )


@pytest.mark.parametrize(
    ("code", "message", "kind", "expected_code"),
    [
        ("PT404", "job_not_found", NotFoundError, "job_not_found"),
        ("PT404", "user_not_found", NotFoundError, "user_not_found"),
        ("PT404", "model_not_found", NotFoundError, "model_not_found"),
        ("PT402", "insufficient_credits", RefusedError, "insufficient_credits"),
        ("PT422", "idempotency_key_reused", RefusedError, "idempotency_key_reused"),
        ("PT422", "refund_exceeds_credits", RefusedError, "refund_exceeds_credits"),
        ("PT409", "job_not_refundable", RefusedError, "job_not_refundable"),
        ("PT400", "invalid_input", UsageError, "invalid_input"),
        ("22P02", "invalid input syntax for type uuid", UsageError, "invalid_input"),
        ("42883", "function public.videogen_get_job(unknown) does not exist", BackendError,
         "migration_missing"),
        ("PGRST202", "Could not find the function", BackendError, "migration_missing"),
        ("42501", "permission denied for function videogen_grant_credits", BackendError,
         "backend_auth"),
        ("PGRST301", "Expected 3 parts in JWT; got 1", BackendError, "backend_auth"),
        ("PGRST302", "Anonymous access is disabled", BackendError, "backend_auth"),
        (None, "Invalid API key", BackendError, "backend_auth"),
        ("PGRST000", "Database connection error", BackendError, "backend_unavailable"),
        ("PGRST003", "Timed out acquiring connection", BackendError, "backend_unavailable"),
        ("502", "Bad Gateway", BackendError, "backend_unavailable"),
        ("57014", "canceling statement due to statement timeout", BackendError,
         "backend_unavailable"),
        ("40P01", "deadlock detected", BackendError, "backend_unavailable"),
        ("XX000", "internal error", BackendError, "backend_error"),
    ],
)  # fmt: skip
def test_codes_map_to_errors(
    code: str | None, message: str, kind: type[VideogenError], expected_code: str
) -> None:
    error = translate(code, message)
    assert type(error) is kind
    assert error.code == expected_code


def test_rule_errors_keep_the_functions_sentence_and_hint() -> None:
    error = translate("PT402", "insufficient_credits", "the job costs 8, the balance is 3")
    assert error.message == "the job costs 8, the balance is 3"
    assert error.hint == "the fix"
    assert error.exit_code == 4


def test_a_missing_function_points_at_the_migration() -> None:
    error = translate("PGRST202", "Could not find the function public.videogen_get_job(p_job_id)")
    assert error.hint == MIGRATION_HINT
    assert "videogen db migrate" in MIGRATION_HINT
    assert error.exit_code == 5


def test_messages_are_one_line_without_secrets() -> None:
    error = translate("XX000", "boom with sb_secret_abc123 inside\nsecond line\nthird")
    assert "\n" not in error.message
    assert "sb_secret_abc123" not in error.message
    assert "second line" not in error.message


def test_timestamps_are_timezone_aware() -> None:
    assert parse_ts("2026-01-02T03:04:05.123456Z").tzinfo is not None
    assert parse_ts("2026-01-02T03:04:05+02:00").utcoffset() is not None
    assert parse_ts("2026-01-02T03:04:05").tzinfo is not None  # naive taken as UTC


def test_the_shared_modules_import_no_driver() -> None:
    # `videogen --help` and `videogen db sql` must not pay for psycopg, supabase or httpx.
    code = (
        "import sys\n"
        "import videogen_cli.storage.sqlfunc, videogen_cli.storage.migrate\n"
        "from videogen_cli.storage.migrate import migration_sql\n"
        "assert 'notify pgrst' in migration_sql()\n"
        "loaded = {'psycopg', 'supabase', 'httpx', 'postgrest'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
