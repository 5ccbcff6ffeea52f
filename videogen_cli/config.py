"""Configuration from the environment (README "Configuration"), resolved once per command.

`Settings` is a pydantic-settings model: one field per variable, named by its alias.
Secrets (the Supabase service-role key, the fal key, the database URL with its password)
are `SecretStr`, so a repr or str of the settings shows none of them, and
`Settings.describe()` (used by `config check`) masks them. The rules the values must
follow, and their messages, are in `Settings._check` (tests/test_config.py and
tests/test_hostile_input.py pin them). This module imports pydantic: only commands that
run import it, never `--help` (tests/test_watch_startup.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from videogen_cli.errors import ConfigError
from videogen_cli.ports import DEFAULT_SUBMIT_GRACE_SECONDS

# The fal queue API, unless VIDEOGEN_FAL_QUEUE_URL says otherwise; also the fal adapter's
# and the simulator's default (providers/fal.py, providers/simulator.py).
DEFAULT_FAL_QUEUE_URL = "https://queue.fal.run"
# Sane bounds for the numeric variables: a week of grace is longer than any submit, and a
# simulator slower than 100x or faster than a million times real time is a typo.
MAX_SUBMIT_GRACE_SECONDS = 7 * 24 * 3600.0
SIM_SPEED_RANGE = (0.01, 1_000_000.0)
# libpq's key=value connection strings (`host=db dbname=app`), which psycopg accepts too.
_CONNINFO_PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)\s*")
_CONNINFO_PASSWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)")


def _env(name: str) -> Any:
    return Field(validation_alias=name)


class Settings(BaseSettings):
    """The checked environment. Built by `load_settings`; every field is read from the
    variable its alias names."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore")

    home: Path = _env("VIDEOGEN_HOME")
    supabase_url: str | None = _env("SUPABASE_URL")
    supabase_key: SecretStr | None = _env("SUPABASE_SERVICE_ROLE_KEY")
    database_url: SecretStr | None = _env("VIDEOGEN_DATABASE_URL")  # may hold a password
    fal_key: SecretStr | None = _env("FAL_KEY")
    fal_queue_url: str = _env("VIDEOGEN_FAL_QUEUE_URL")
    user_id: str | None = _env("VIDEOGEN_USER_ID")
    operator: str | None = _env("VIDEOGEN_OPERATOR")
    provider_choice: str | None = _env("VIDEOGEN_PROVIDER")  # "fal" | "simulator"
    sim_speed: float = _env("VIDEOGEN_SIM_SPEED")
    submit_grace_seconds: float = _env("VIDEOGEN_SUBMIT_GRACE_SECONDS")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The process environment only: no .env file, no secrets directory.
        return init_settings, env_settings

    @model_validator(mode="before")
    @classmethod
    def _check(cls, given: Any) -> dict[str, Any]:
        """The variables as set, checked in this order, each value stripped (empty is
        unset); every value filled in, defaults included. Raises ConfigError."""
        env: Mapping[str, Any] = given if isinstance(given, Mapping) else {}

        def get(name: str) -> str | None:
            return _text(name, _raw(env, name)).strip() or None

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
        if supabase_url:
            _http_url(
                "SUPABASE_URL",
                supabase_url,
                hint="export SUPABASE_URL=https://<project>.supabase.co",
            )
        if supabase_key:
            _token("SUPABASE_SERVICE_ROLE_KEY", supabase_key)
        if database_url:
            _dsn_fields(database_url)
        fal_key = get("FAL_KEY")
        if fal_key:
            _token("FAL_KEY", fal_key, code="provider_auth")  # as the fal adapter says it
        fal_queue_url = (get("VIDEOGEN_FAL_QUEUE_URL") or DEFAULT_FAL_QUEUE_URL).rstrip("/")
        _http_url(
            "VIDEOGEN_FAL_QUEUE_URL",
            fal_queue_url,
            hint=f"unset it to use {DEFAULT_FAL_QUEUE_URL}, or give a full URL like it",
        )
        if provider_choice not in (None, "fal", "simulator"):
            raise ConfigError(
                f"VIDEOGEN_PROVIDER must be 'fal' or 'simulator', not {provider_choice!r}",
                hint="unset it to choose automatically",
            )
        return {
            "VIDEOGEN_HOME": home,
            "SUPABASE_URL": supabase_url,
            "SUPABASE_SERVICE_ROLE_KEY": supabase_key,
            "VIDEOGEN_DATABASE_URL": database_url,
            "FAL_KEY": fal_key,
            "VIDEOGEN_FAL_QUEUE_URL": fal_queue_url,
            "VIDEOGEN_USER_ID": get("VIDEOGEN_USER_ID"),
            "VIDEOGEN_OPERATOR": get("VIDEOGEN_OPERATOR"),
            "VIDEOGEN_PROVIDER": provider_choice,
            "VIDEOGEN_SIM_SPEED": _number(env, "VIDEOGEN_SIM_SPEED", 1.0, *SIM_SPEED_RANGE),
            "VIDEOGEN_SUBMIT_GRACE_SECONDS": _number(
                env,
                "VIDEOGEN_SUBMIT_GRACE_SECONDS",
                DEFAULT_SUBMIT_GRACE_SECONDS,
                0.0,
                MAX_SUBMIT_GRACE_SECONDS,
                low_inclusive=False,
            ),
        }

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
            "supabase_service_role_key": _mask(_reveal(self.supabase_key)),
            "database_url": _mask_dsn(_reveal(self.database_url)),
            "fal_key": _mask(_reveal(self.fal_key)),
            "fal_queue_url": self.fal_queue_url,
            "user_id": self.user_id,
            "operator": self.operator,
        }

    def target(self) -> str:
        """Where money would move, for confirmation prompts: never a password or a key.

        "sandbox <file>", "postgres <host>:<port>/<database>" or "supabase <project host>".
        """
        if self.supabase_url:
            return f"supabase {urlsplit(self.supabase_url).hostname}"
        if self.database_url:
            fields = _dsn_fields(self.database_url.get_secret_value())
            host = fields.get("host") or fields.get("hostaddr") or "localhost"
            port = f":{fields['port']}" if fields.get("port") else ""
            return f"postgres {host}{port}/{fields.get('dbname') or '(default database)'}"
        return f"sandbox {self.sandbox_db}"

    def database_location(self) -> str:
        """Where the database is, for notes: never a user name, password or key."""
        if self.backend == "supabase" and self.supabase_url:
            return f"project {urlsplit(self.supabase_url).hostname or self.supabase_url}"
        if self.backend == "postgres" and self.database_url:
            dsn = self.database_url.get_secret_value()
            try:
                parts = urlsplit(dsn)
                if not parts.scheme:  # a libpq "host=… port=… dbname=…" connection string
                    words = dict(w.split("=", 1) for w in dsn.split() if "=" in w)
                    port = f":{words['port']}" if "port" in words else ""
                    return (
                        f"database {words.get('host', 'localhost')}{port}/{words.get('dbname', '')}"
                    )
                host = parts.hostname or "localhost"
                port = f":{parts.port}" if parts.port else ""
            except ValueError:
                return "database (unparsable VIDEOGEN_DATABASE_URL)"
            return f"database {host}{port}{parts.path or ''}"
        return str(self.sandbox_db)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment (`env`, else the process's). Raises ConfigError for
    contradictions."""
    if env is None:
        return Settings()  # pydantic-settings reads the process environment
    # Every variable is given (None: unset), so none is read from the process environment.
    return Settings.model_validate({name: env.get(name) for name in _VARIABLES})


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


def _raw(env: Mapping[str, Any], name: str) -> str:
    value = env.get(name)
    return "" if value is None else str(value)


def _text(name: str, value: str) -> str:
    """The variable's value, refused when it is not valid text.

    Python hands undecodable bytes over as lone surrogates (surrogateescape); they would
    fail later, in the middle of a command, so they are refused here. The value itself
    is never shown: it may be a secret.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{name} contains bytes that are not valid UTF-8 text",
            hint=f"set {name} again as plain text (check the shell quoting)",
        ) from None
    return value


def _number(
    env: Mapping[str, Any],
    name: str,
    default: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
) -> float:
    """A finite number within [low, high] (or (low, high]); nan and inf are refused."""
    raw = _text(name, _raw(env, name)).strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    above_low = value >= low if low_inclusive else value > low
    if not (math.isfinite(value) and above_low and value <= high):
        bounds = f"from {low:g} to" if low_inclusive else f"more than {low:g} and at most"
        raise ConfigError(
            f"{name} must be a number {bounds} {high:g}, not {raw[:40]!r}",
            hint=f"unset {name} to use {default:g}",
        )
    return value


def _http_url(name: str, value: str, *, hint: str) -> SplitResult:
    """An absolute http(s) URL with a host (no spaces, a valid port), else ConfigError."""
    shown = repr(value[:80])
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL ({exc}): {shown}", hint=hint) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise ConfigError(
            f"{name} must be an absolute http(s) URL with a host, not {shown}", hint=hint
        )
    return parts


def _token(name: str, value: str, code: str | None = None) -> None:
    """A key sent in an HTTP header: printable ASCII without spaces (never shown)."""
    if not all("!" <= c <= "~" for c in value):
        raise ConfigError(
            f"{name} contains characters an API key never has (spaces, control characters "
            "or non-ASCII)",
            code=code,
            hint=f"copy {name} again from its dashboard",
        )


def _dsn_fields(dsn: str) -> dict[str, str]:
    """Check a Postgres connection string and return its host, port and dbname.

    Accepts the URL form (postgresql://user@host:5432/app) and libpq's key=value form
    (host=db dbname=app). Errors never repeat the string: it may hold a password.
    """
    hint = "export VIDEOGEN_DATABASE_URL=postgresql://user:password@host:5432/database"
    if any(not c.isprintable() for c in dsn):
        raise ConfigError("VIDEOGEN_DATABASE_URL contains control characters", hint=hint)
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(
                f"VIDEOGEN_DATABASE_URL is not a valid URL ({exc})", hint=hint
            ) from None
        if parts.scheme not in ("postgres", "postgresql"):
            raise ConfigError(
                "VIDEOGEN_DATABASE_URL must start with postgresql:// (or postgres://)",
                hint=hint,
            )
        return {
            "host": parts.hostname or "",
            "port": "" if port is None else str(port),
            "dbname": parts.path.lstrip("/"),
        }
    pairs = _CONNINFO_PAIR.findall(dsn)
    if not pairs or "".join(_CONNINFO_PAIR.sub("", dsn).split()):
        raise ConfigError(
            "VIDEOGEN_DATABASE_URL is neither a postgresql:// URL nor key=value settings",
            hint=hint,
        )
    return {key: value.strip("'") for key, value in pairs}


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _mask(secret: str | None) -> str | None:
    if not secret:
        return None
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def _mask_dsn(dsn: str | None) -> str | None:
    """Hide the password in a postgres URL or key=value settings, keep host and database
    visible."""
    if not dsn:
        return None
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in dsn:
        return _CONNINFO_PASSWORD.sub(r"\1****", dsn)
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":****@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


# The variables Settings reads, by their names (the fields' aliases).
_VARIABLES = tuple(str(f.validation_alias) for f in Settings.model_fields.values())
