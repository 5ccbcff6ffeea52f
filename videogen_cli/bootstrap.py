"""The composition root: the only module that names concrete stores and providers.

Backends and the HTTP stack are imported here lazily, when a command needs them, so
`videogen --help` stays light (no httpx, psycopg or supabase).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from videogen_cli import debuglog
from videogen_cli.config import Settings, check_provider
from videogen_cli.core.jobs import JobService
from videogen_cli.core.smoke.client import EndpointClient
from videogen_cli.errors import ConfigError
from videogen_cli.ports import Clock, JobStore, VideoProvider


def build_service(settings: Settings, *, clock: Clock | None = None) -> JobService:
    return JobService(
        debuglog.wrap_store(open_store(settings)),
        lambda: open_provider(settings),
        clock=clock,
        submit_grace_seconds=settings.submit_grace_seconds,
    )


def open_store(settings: Settings) -> JobStore:
    if settings.backend == "supabase":
        try:
            from videogen_cli.storage.supabase import SupabaseStore
        except ImportError as exc:
            raise _missing_extra("supabase", exc) from exc
        assert settings.supabase_url and settings.supabase_key  # checked by load_settings
        return SupabaseStore(settings.supabase_url, settings.supabase_key.get_secret_value())
    if settings.backend == "postgres":
        try:
            from videogen_cli.storage.postgres import PostgresStore
        except ImportError as exc:
            raise _missing_extra("postgres", exc) from exc
        assert settings.database_url
        return PostgresStore(settings.database_url.get_secret_value())
    from videogen_cli.storage.sqlite import SqliteStore

    return SqliteStore(settings.sandbox_db)


def check_driver(settings: Settings) -> None:
    """ConfigError (exit 5, with the install hint) when the configured backend's driver
    is not installed; `videogen config` reports it without opening a connection."""
    module = {"postgres": "postgres", "supabase": "supabase"}.get(settings.backend)
    if module is None:
        return
    try:
        importlib.import_module(f"videogen_cli.storage.{module}")
    except ImportError as exc:
        raise _missing_extra(module, exc) from exc


def open_provider(settings: Settings) -> VideoProvider:
    check_provider(settings)  # no FAL_KEY: exit 5 here, only for commands that call fal
    if settings.provider == "simulator":
        from videogen_cli.providers.simulator import build_simulator

        settings.home.mkdir(parents=True, exist_ok=True)
        return build_simulator(
            settings.sandbox_db, speed=settings.sim_speed, base_url=settings.fal_queue_url
        )
    from videogen_cli.providers.fal import FalQueueProvider

    assert settings.fal_key  # checked by check_provider
    return FalQueueProvider(settings.fal_key.get_secret_value(), base_url=settings.fal_queue_url)


def _missing_extra(extra: str, exc: ImportError) -> ConfigError:
    # videogen-cli is not published on any index, so the hint names the driver itself
    # (the same requirement as the extra in pyproject.toml), installed where videogen runs.
    requirement = {"postgres": "psycopg[binary]>=3.1.4,<4", "supabase": "supabase>=2.16,<3"}[extra]
    install = f"{sys.executable} -m pip install '{requirement}'"
    if (Path(sys.prefix) / "pipx_metadata.json").is_file():
        # Installed with pipx: its own command keeps the driver across `pipx upgrade`.
        install = f"pipx inject videogen-cli '{requirement}'"
    return ConfigError(
        f"the {extra} backend needs a package that is not installed ({exc.name})",
        hint=f"install it next to videogen: {install} "
        f"(from a checkout: pip install -e '.[{extra}]')",
    )


# --- The adapters the `db`, `sandbox reset` and `smoke --endpoint` commands use. Named here
# only, like the stores above (the import contracts in pyproject.toml, README "Layout").


def migration_sql() -> str:
    """The Postgres migration as one SQL script (`videogen db sql`)."""
    from videogen_cli.storage.migrate import migration_sql as script

    return script()


def apply_migration(dsn: str) -> None:
    """Apply the migration to the database at `dsn` (`videogen db migrate`)."""
    from videogen_cli.storage.migrate import apply_migration as apply

    apply(dsn)


def reset_sandbox(path: Path, user_id: str) -> int | None:
    """Delete the sandbox database at `path` (and its WAL files), create it again seeded,
    and return `user_id`'s balance there (`videogen sandbox reset`)."""
    from videogen_cli.storage.sqlite import SqliteStore

    for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    store = SqliteStore(path)  # creates and seeds the file
    try:
        return store.get_balance(user_id)
    finally:
        store.close()


def open_endpoint_client(base_url: str, headers: dict[str, str]) -> EndpointClient:
    """The HTTP client `smoke --endpoint` sends its requests with (httpx)."""
    from videogen_cli.providers.endpoints import HttpxEndpointClient

    return HttpxEndpointClient(base_url, headers)
