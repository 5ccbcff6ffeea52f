"""Results only the CLI makes (the configuration, a token): records with a JSON form,
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
