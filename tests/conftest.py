"""Isolation for every test: its own VIDEOGEN_HOME, no real credentials, plain output."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_CLEARED = ("FAL_KEY", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "CI_FORCE_COLOR")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("VIDEOGEN_") and name != "VIDEOGEN_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("VIDEOGEN_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    # Simulated jobs take ~7 s at speed 1; tests run them 1000 times faster.
    monkeypatch.setenv("VIDEOGEN_SIM_SPEED", "1000")
    yield home
