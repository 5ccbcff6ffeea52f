"""Configuration from the environment (design §3), resolved once per command.

Secrets are held here and handed to adapters; nothing in this module prints them, and
`Settings.describe()` (used by `config check`) masks them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from videogen_cli.errors import ConfigError

DEFAULT_FAL_QUEUE_URL = "https://queue.fal.run"
# A job charged but never handed to fal (the process died in between) is failed and
# refunded by `status` once it is older than this. Generous, because a submit with its
# safe retries can legitimately take a minute.
DEFAULT_SUBMIT_GRACE_SECONDS = 600.0
# Sane bounds for the numeric variables: a week of grace is longer than any submit, and a
# simulator slower than 100x or faster than a million times real time is a typo.
MAX_SUBMIT_GRACE_SECONDS = 7 * 24 * 3600.0
SIM_SPEED_RANGE = (0.01, 1_000_000.0)
# libpq's key=value connection strings (`host=db dbname=app`), which psycopg accepts too.
_CONNINFO_PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)\s*")


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

    def target(self) -> str:
        """Where money would move, for confirmation prompts: never a password or a key.

        "sandbox <file>", "postgres <host>:<port>/<database>" or "supabase <project host>".
        """
        if self.supabase_url:
            return f"supabase {urlsplit(self.supabase_url).hostname}"
        if self.database_url:
            fields = _dsn_fields(self.database_url)
            host = fields.get("host") or fields.get("hostaddr") or "localhost"
            port = f":{fields['port']}" if fields.get("port") else ""
            return f"postgres {host}{port}/{fields.get('dbname') or '(default database)'}"
        return f"sandbox {self.sandbox_db}"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment. Raises ConfigError for contradictions."""
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = _text(name, env.get(name, "")).strip()
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
    if supabase_url:
        _http_url(
            "SUPABASE_URL", supabase_url, hint="export SUPABASE_URL=https://<project>.supabase.co"
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
    settings = Settings(
        home=home,
        supabase_url=supabase_url,
        supabase_key=supabase_key,
        database_url=database_url,
        fal_key=fal_key,
        fal_queue_url=fal_queue_url,
        user_id=get("VIDEOGEN_USER_ID"),
        operator=get("VIDEOGEN_OPERATOR"),
        provider_choice=provider_choice,
        sim_speed=_number(env, "VIDEOGEN_SIM_SPEED", 1.0, *SIM_SPEED_RANGE),
        submit_grace_seconds=_number(
            env,
            "VIDEOGEN_SUBMIT_GRACE_SECONDS",
            DEFAULT_SUBMIT_GRACE_SECONDS,
            0.0,
            MAX_SUBMIT_GRACE_SECONDS,
            low_inclusive=False,
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
    env: Mapping[str, str],
    name: str,
    default: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
) -> float:
    """A finite number within [low, high] (or (low, high]); nan and inf are refused."""
    raw = _text(name, env.get(name, "")).strip()
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
