"""Configuration from the environment (design §3), resolved once per command.

Secrets are held here and handed to adapters; nothing in this module prints them, and
`Settings.describe()` (used by `config check`) masks them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from videogen_cli.errors import ConfigError

DEFAULT_FAL_QUEUE_URL = "https://queue.fal.run"
# A job charged but never handed to fal (the process died in between) is failed and
# refunded by `status` once it is older than this. Generous, because a submit with its
# safe retries can legitimately take a minute.
DEFAULT_SUBMIT_GRACE_SECONDS = 600.0


@dataclass(frozen=True)
class Settings:
    home: Path
    supabase_url: str | None = None
    supabase_key: str | None = None
    database_url: str | None = None
    fal_key: str | None = None
    fal_queue_url: str = DEFAULT_FAL_QUEUE_URL
    user_id: str | None = None
    operator: str | None = None
    provider_choice: str | None = None  # VIDEOGEN_PROVIDER: "fal" | "simulator"
    sim_speed: float = 1.0
    submit_grace_seconds: float = DEFAULT_SUBMIT_GRACE_SECONDS

    @property
    def backend(self) -> str:
        if self.supabase_url:
            return "supabase"
        if self.database_url:
            return "postgres"
        return "sandbox"

    @property
    def provider(self) -> str:
        """'fal' or 'simulator'; a real backend never gets the simulator by accident.

        A real backend means fal unless VIDEOGEN_PROVIDER=simulator; without FAL_KEY,
        `check_provider` refuses it when a command builds the provider.
        """
        if self.provider_choice == "simulator":
            return "simulator"
        if self.provider_choice == "fal" or self.fal_key or self.backend != "sandbox":
            return "fal"
        return "simulator"

    @property
    def sandbox_db(self) -> Path:
        return self.home / "sandbox.sqlite3"

    def describe(self) -> dict[str, object]:
        """What `config check` shows: where things point, secrets masked."""
        return {
            "backend": self.backend,
            "provider": self.provider,
            "home": str(self.home),
            "supabase_url": self.supabase_url,
            "supabase_service_role_key": _mask(self.supabase_key),
            "database_url": _mask_dsn(self.database_url),
            "fal_key": _mask(self.fal_key),
            "fal_queue_url": self.fal_queue_url,
            "user_id": self.user_id,
            "operator": self.operator,
        }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment. Raises ConfigError for contradictions."""
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    home = Path(get("VIDEOGEN_HOME") or _default_home()).expanduser()
    supabase_url, supabase_key = get("SUPABASE_URL"), get("SUPABASE_SERVICE_ROLE_KEY")
    database_url = get("VIDEOGEN_DATABASE_URL")
    provider_choice = get("VIDEOGEN_PROVIDER")

    if supabase_url and database_url:
        raise ConfigError(
            "both SUPABASE_URL and VIDEOGEN_DATABASE_URL are set",
            hint="unset one of them: the tool talks to exactly one backend",
        )
    if supabase_url and not supabase_key:
        raise ConfigError(
            "SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is not",
            code="missing_credentials",
            hint="export SUPABASE_SERVICE_ROLE_KEY (Project Settings > API > service_role key)",
        )
    if supabase_key and not supabase_url:
        raise ConfigError(
            "SUPABASE_SERVICE_ROLE_KEY is set but SUPABASE_URL is not",
            hint="export SUPABASE_URL=https://<project>.supabase.co",
        )
    if provider_choice not in (None, "fal", "simulator"):
        raise ConfigError(
            f"VIDEOGEN_PROVIDER must be 'fal' or 'simulator', not {provider_choice!r}",
            hint="unset it to choose automatically",
        )
    settings = Settings(
        home=home,
        supabase_url=supabase_url,
        supabase_key=supabase_key,
        database_url=database_url,
        fal_key=get("FAL_KEY"),
        fal_queue_url=(get("VIDEOGEN_FAL_QUEUE_URL") or DEFAULT_FAL_QUEUE_URL).rstrip("/"),
        user_id=get("VIDEOGEN_USER_ID"),
        operator=get("VIDEOGEN_OPERATOR"),
        provider_choice=provider_choice,
        sim_speed=_positive_float(env, "VIDEOGEN_SIM_SPEED", 1.0),
        submit_grace_seconds=_positive_float(
            env, "VIDEOGEN_SUBMIT_GRACE_SECONDS", DEFAULT_SUBMIT_GRACE_SECONDS
        ),
    )
    return settings


def check_provider(settings: Settings) -> None:
    """Raise ConfigError when the provider cannot be built: fal chosen but no FAL_KEY.

    Checked where the provider is built (bootstrap.open_provider), not by load_settings:
    commands that never call fal (refund, grant, credits, jobs, models, config, db) work
    on a real backend without the key, so support staff need not hold it.
    """
    if settings.provider != "fal" or settings.fal_key:
        return
    if settings.provider_choice == "fal":
        raise ConfigError(
            "VIDEOGEN_PROVIDER=fal but FAL_KEY is not set",
            code="missing_credentials",
            hint="export FAL_KEY (fal.ai dashboard > Keys)",
        )
    raise ConfigError(
        f"the {settings.backend} backend is configured but FAL_KEY is not set",
        code="missing_credentials",
        hint="export FAL_KEY, or VIDEOGEN_PROVIDER=simulator to use the local simulator "
        "against this real database on purpose",
    )


def _default_home() -> str:
    from platformdirs import user_data_dir  # only when VIDEOGEN_HOME is not set

    return user_data_dir("videogen", appauthor=False)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number, not {raw!r}", hint=f"unset {name}")
    return value


def _mask(secret: str | None) -> str | None:
    if not secret:
        return None
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def _mask_dsn(dsn: str | None) -> str | None:
    """Hide the password in a postgres URL, keep host and database visible."""
    if not dsn:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":****@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn
