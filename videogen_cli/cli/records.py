"""Results only the CLI makes (the configuration, a token, the sandbox and database
admin commands): records with a JSON form,
printed like the core's through `Output.emit` and drawn by cli/render.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videogen_cli.errors import ConfigError


@dataclass(frozen=True)
class ConfigReport:
    """`videogen config`: the settings as set (secrets masked), and what is wrong."""

    settings: dict[str, Any]
    problems: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.settings)
        for name, found in (("problems", self.problems), ("warnings", self.warnings)):
            if found:
                data[name] = [{"code": p.code, "message": p.message, "hint": p.hint} for p in found]
        return data


@dataclass(frozen=True)
class IssuedToken:
    """`videogen token`: a user token for `videogen serve` (a credential: stdout only)."""

    token: str
    user_id: str
    expires_at: str  # ISO-8601 UTC
    ttl: int

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "user_id": self.user_id, "expires_at": self.expires_at}


@dataclass(frozen=True)
class SandboxReset:
    """`videogen sandbox reset`: the file made anew, and the demo user's balance."""

    database: str
    demo_user: str
    balance: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "reset": True,
            "database": self.database,
            "demo_user": self.demo_user,
            "balance": self.balance,
        }


@dataclass(frozen=True)
class MigrationSql:
    """`videogen db sql`: the migration as one SQL text."""

    sql: str

    def to_json(self) -> dict[str, Any]:
        return {"sql": self.sql}


@dataclass(frozen=True)
class Migrated:
    """`videogen db migrate`: the database migrated (its URL shown masked)."""

    database_url: object  # Settings.describe()["database_url"]: masked

    def to_json(self) -> dict[str, Any]:
        return {"migrated": True, "database_url": self.database_url}
