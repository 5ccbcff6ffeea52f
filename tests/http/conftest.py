"""An app on the test's own sandbox (tests/conftest.py gives each test a VIDEOGEN_HOME)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.support import Api, Server, serve_process
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.config import load_settings
from videogen_cli.http.app import create_app
from videogen_cli.http.tokens import load_secret, mint


@pytest.fixture(autouse=True)
def no_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's own secret unless a test sets SUPABASE_JWT_SECRET itself."""
    monkeypatch.delenv("SUPABASE_JWT_SECRET", raising=False)


@pytest.fixture
def log_lines() -> list[str]:
    return []


@pytest.fixture
def api(isolated_env: Path, log_lines: list[str]) -> Iterator[Api]:
    settings = load_settings()
    app = create_app(settings, log=log_lines.append)
    yield Api(app, mint(load_secret(settings), DEMO_USER_ID, 600))
    app.state.pool.close()


@pytest.fixture
def server(isolated_env: Path) -> Iterator[Server]:
    """A real `videogen serve` process on a free port, on the test's sandbox."""
    with serve_process() as srv:
        yield srv
