"""User tokens: the JWTs the app sends as `Authorization: Bearer …`, checked with PyJWT.

Supabase signs user tokens with the project's JWT secret (HS256) or, on newer projects,
with an asymmetric key published as JWKS (ES256/RS256). `serve` verifies through the
small `TokenVerifier` interface so a JWKS verifier (PyJWT's `PyJWKClient`) can be added
beside `HS256Verifier` without touching the app.

The secret: `SUPABASE_JWT_SECRET` when set; otherwise, on the sandbox only, a random
secret created once in VIDEOGEN_HOME (mode 0600), so `videogen token` and `videogen serve`
agree without any setup. The secret is never printed or logged.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import jwt

from videogen_cli.config import Settings
from videogen_cli.errors import ConfigError, UsageError

SECRET_ENV = "SUPABASE_JWT_SECRET"
SANDBOX_SECRET_FILE = "jwt-secret"
# Supabase puts this audience in every signed-in user's token.
AUDIENCE = "authenticated"
MAX_TTL_SECONDS = 30 * 24 * 3600


class InvalidToken(Exception):
    """The bearer token cannot be trusted; the message is safe to show (no token in it)."""


@dataclass(frozen=True)
class Claims:
    user_id: str  # the token's `sub`, canonical lower-case UUID
    expires_at: int


class TokenVerifier(Protocol):
    """Checks a bearer token and returns who it is for, or raises InvalidToken."""

    def verify(self, token: str) -> Claims: ...


class HS256Verifier:
    """Tokens signed with a shared secret, as Supabase's legacy JWT secret signs them."""

    algorithms = ("HS256",)

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, token: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=list(self.algorithms),
                options={"require": ["exp", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the token is not valid ({type(exc).__name__})") from None
        return claims_from(payload)


def claims_from(payload: dict[str, object]) -> Claims:
    """The checks every verifier shares once the signature and `exp` are good."""
    # Like Supabase: a token meant for another audience (e.g. a service) is refused; a
    # token without `aud` is accepted (`videogen token` always sets it).
    aud = payload.get("aud")
    if aud is not None and aud != AUDIENCE and not (isinstance(aud, list) and AUDIENCE in aud):
        raise InvalidToken(f"the token's audience is not {AUDIENCE!r}")
    sub = payload.get("sub")
    try:
        user_id = str(uuid.UUID(str(sub)))
    except ValueError:
        raise InvalidToken("the token's sub is not a user id (UUID)") from None
    exp = payload.get("exp")
    return Claims(user_id=user_id, expires_at=int(exp) if isinstance(exp, int | float) else 0)


def mint(secret: str, user_id: str, ttl_seconds: int, *, now: float | None = None) -> str:
    """A user token shaped like Supabase's (sub, aud, role, iat, exp), signed HS256."""
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": user_id,
        "aud": AUDIENCE,
        "role": "authenticated",
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def check_ttl(ttl: int) -> int:
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise UsageError(
            f"--ttl must be between 1 and {MAX_TTL_SECONDS} seconds, not {ttl}",
            hint="e.g. --ttl 86400 for a day",
        )
    return ttl


def load_secret(settings: Settings, env: dict[str, str] | None = None) -> str:
    """The signing secret, or ConfigError (exit 5) on a real backend without one."""
    environ = os.environ if env is None else env
    secret = environ.get(SECRET_ENV, "").strip()
    if secret:
        return secret
    if settings.backend != "sandbox":
        raise ConfigError(
            f"{SECRET_ENV} is not set, so no user token can be signed or checked",
            code="missing_credentials",
            hint=f"export {SECRET_ENV} (Supabase: Project Settings > API > JWT secret)",
        )
    return sandbox_secret(settings.home)


def sandbox_secret(home: Path) -> str:
    """The sandbox's own secret: created once (0600), then read by every process."""
    path = home / SANDBOX_SECRET_FILE
    try:
        home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created before, perhaps by a process starting at the same moment
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
        for _ in range(50):  # a concurrent creator may not have written it yet
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.01)
    except OSError as exc:
        raise ConfigError(
            f"cannot read or create the sandbox token secret {path}: {exc.strerror}",
            hint="check VIDEOGEN_HOME points at a writable folder",
        ) from None
    raise ConfigError(f"the sandbox token secret {path} is empty", hint=f"delete {path}")
