"""Settings: secrets never shown, the process environment read like a given mapping.

The rules for each variable and their messages are pinned by tests/test_hostile_input.py
and tests/test_edges.py (`config`); these tests pin what the settings object shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from videogen_cli.config import DEFAULT_FAL_QUEUE_URL, Settings, load_settings

SUPABASE_KEY = "sb-service-role-SECRET-0123456789abcdef"
FAL_KEY = "fal-id:FAL-SECRET-fedcba9876543210"
DB_PASSWORD = "PG-PASSWORD-hunter2"

SECRETS = (SUPABASE_KEY, FAL_KEY, DB_PASSWORD, "hunter2")


def _everything_shown(settings: Settings) -> str:
    return "\n".join([repr(settings), str(settings), f"{settings}", repr(settings.describe())])


def test_no_secret_appears_in_repr_str_or_describe() -> None:
    supabase = load_settings(
        {
            "VIDEOGEN_HOME": "/tmp/videogen-config-test",
            "SUPABASE_URL": "https://abc.supabase.co",
            "SUPABASE_SERVICE_ROLE_KEY": SUPABASE_KEY,
            "FAL_KEY": FAL_KEY,
        }
    )
    postgres = load_settings(
        {
            "VIDEOGEN_HOME": "/tmp/videogen-config-test",
            "VIDEOGEN_DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@db.example:5432/app",
            "FAL_KEY": FAL_KEY,
        }
    )
    conninfo = load_settings(
        {
            "VIDEOGEN_HOME": "/tmp/videogen-config-test",
            "VIDEOGEN_DATABASE_URL": f"host=db.example dbname=app password={DB_PASSWORD}",
        }
    )
    for settings in (supabase, postgres, conninfo):
        shown = _everything_shown(settings)
        for secret in SECRETS:
            assert secret not in shown
    assert conninfo.describe()["database_url"] == "host=db.example dbname=app password=****"
    # The secrets are still there for the adapters, and only through get_secret_value().
    assert supabase.supabase_key is not None and supabase.fal_key is not None
    assert supabase.supabase_key.get_secret_value() == SUPABASE_KEY
    assert supabase.fal_key.get_secret_value() == FAL_KEY
    assert postgres.database_url is not None
    assert DB_PASSWORD in postgres.database_url.get_secret_value()
    # What the notes and prompts name: where things are, never who or with what.
    assert postgres.target() == "postgres db.example:5432/app"
    assert postgres.database_location() == "database db.example:5432/app"
    assert supabase.target() == "supabase abc.supabase.co"
    assert postgres.describe()["database_url"] == "postgresql://app:****@db.example:5432/app"
    assert supabase.describe()["fal_key"] == "****3210"


def test_the_process_environment_is_read_like_a_given_mapping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        "VIDEOGEN_HOME": f"  {tmp_path}  ",
        "VIDEOGEN_DATABASE_URL": "postgresql://u:pw@db.example:5432/app",
        "VIDEOGEN_FAL_QUEUE_URL": "http://127.0.0.1:9/queue/",
        "VIDEOGEN_PROVIDER": "simulator",
        "VIDEOGEN_USER_ID": "",
        "VIDEOGEN_SIM_SPEED": " 250 ",
        "VIDEOGEN_SUBMIT_GRACE_SECONDS": "30",
    }
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "FAL_KEY", "VIDEOGEN_OPERATOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from_process = load_settings()
    assert from_process == load_settings(env)
    assert from_process.home == tmp_path
    assert from_process.fal_queue_url == "http://127.0.0.1:9/queue"
    assert (from_process.backend, from_process.provider) == ("postgres", "simulator")
    assert from_process.user_id is None and from_process.operator is None
    assert (from_process.sim_speed, from_process.submit_grace_seconds) == (250.0, 30.0)


def test_defaults() -> None:
    settings = load_settings({"VIDEOGEN_HOME": "/h"})
    assert (settings.backend, settings.provider) == ("sandbox", "simulator")
    assert settings.fal_queue_url == DEFAULT_FAL_QUEUE_URL == "https://queue.fal.run"
    assert (settings.sim_speed, settings.submit_grace_seconds) == (1.0, 600.0)
    assert settings.sandbox_db == Path("/h/sandbox.sqlite3")
    assert settings.fal_key is None and settings.database_url is None


def test_settings_cannot_be_changed_once_checked() -> None:
    settings = load_settings({"VIDEOGEN_HOME": "/h"})
    with pytest.raises(ValueError):
        settings.fal_queue_url = "http://elsewhere"  # type: ignore[misc]
