"""JobStore on a Postgres database reached directly (VIDEOGEN_DATABASE_URL), via psycopg 3.

Calls the same SQL functions as the Supabase store; only the transport differs. Each
call is one autocommit statement, ``select public.videogen_x(p_a => ..., ...)``, hence
one transaction: the function is the unit of atomicity, never the client.

Imported only when the postgres backend is chosen (psycopg is an optional extra).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from videogen_cli.errors import BackendError, ConfigError, VideogenError
from videogen_cli.storage.sqlfunc import SqlFunctionStore, error_from_sqlstate, one_line

CONNECT_TIMEOUT_SECONDS = 10
# Rolled back by the server, so running the call again cannot move money twice.
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_ATTEMPTS = 3

AUTH_HINT = (
    "check the user and password in VIDEOGEN_DATABASE_URL; the role needs EXECUTE on the "
    "videogen_* functions (granted to service_role): connect as their owner or a member "
    "of service_role"
)
UNAVAILABLE_HINT = (
    "check VIDEOGEN_DATABASE_URL (host, port, database name) and that the server accepts "
    "connections from here"
)
UNKNOWN_OUTCOME_HINT = (
    "the connection broke during the call, so its outcome is unknown: check with "
    "`videogen status` before retrying (generate with the same --idempotency-key is safe)"
)
_AUTH_FAILURE = re.compile(
    r"password authentication failed|no password supplied|authentication failed|"
    r"no pg_hba\.conf entry|role .* does not exist",
    re.IGNORECASE,
)


def dsn_secrets(dsn: str) -> tuple[str, ...]:
    """What must never appear in a message: the password (and the DSN that holds it)."""
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        password = None
    return tuple(s for s in (dsn, str(password) if password else "") if s)


def connect(dsn: str, *, autocommit: bool) -> psycopg.Connection[Any]:
    """A connection with the tool's defaults; failures become ConfigError/BackendError."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        raise ConfigError(
            "VIDEOGEN_DATABASE_URL is not a valid Postgres connection string",
            hint="use postgresql://USER:PASSWORD@HOST:5432/DATABASE",
        ) from None
    extra: dict[str, Any] = {}
    if "connect_timeout" not in params:
        extra["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if "application_name" not in params:
        extra["application_name"] = "videogen"
    try:
        # prepare_threshold=None: no server-side prepared statements, which transaction
        # poolers (Supabase's pooler, pgbouncer) cannot keep across transactions.
        return psycopg.connect(dsn, autocommit=autocommit, prepare_threshold=None, **extra)
    except psycopg.Error as exc:
        raise connection_error(exc, dsn) from None


def connection_error(exc: psycopg.Error, dsn: str) -> BackendError:
    text = one_line(str(exc), dsn_secrets(dsn)) or type(exc).__name__
    if (exc.sqlstate or "").startswith("28") or _AUTH_FAILURE.search(str(exc)):
        return BackendError(
            f"postgres refused the credentials: {text}", code="backend_auth", hint=AUTH_HINT
        )
    return BackendError(
        f"cannot connect to postgres: {text}", code="backend_unavailable", hint=UNAVAILABLE_HINT
    )


class PostgresStore(SqlFunctionStore):
    """JobStore over psycopg; one lazily opened autocommit connection per store."""

    backend_name = "postgres"

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._secrets = dsn_secrets(dsn)
        self._conn: psycopg.Connection[Any] | None = None
        # One call at a time per store: a psycopg connection runs one statement at once.
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        # A connection that broke earlier is replaced before anything is sent on it, so
        # reconnecting here never repeats a call.
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self._dsn, autocommit=True)
        return self._conn

    def _call(self, fn: str, args: dict[str, Any]) -> Any:
        query = sql.SQL("select public.{}({})").format(
            sql.Identifier(fn),
            sql.SQL(", ").join(
                sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder(name))
                for name in args
            ),
        )
        params = {name: _adapt(value) for name, value in args.items()}
        with self._lock:
            for attempt in range(1, _ATTEMPTS + 1):
                conn = self._connection()
                try:
                    row = conn.execute(query, params).fetchone()
                except psycopg.Error as exc:
                    if exc.sqlstate in _RETRY_SQLSTATES and attempt < _ATTEMPTS:
                        continue
                    raise self._error(exc, conn) from None
                return row[0] if row else None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _error(self, exc: psycopg.Error, conn: psycopg.Connection[Any]) -> VideogenError:
        if conn.broken or conn.closed:
            self._conn = None
            text = one_line(str(exc), self._secrets) or type(exc).__name__
            return BackendError(
                f"lost the connection to postgres during the call: {text}",
                code="backend_unavailable",
                hint=UNKNOWN_OUTCOME_HINT,
            )
        diag = exc.diag
        return error_from_sqlstate(
            exc.sqlstate,
            diag.message_primary or str(exc),
            diag.message_detail,
            diag.message_hint,
            backend="postgres",
            auth_hint=AUTH_HINT,
            unavailable_hint=UNAVAILABLE_HINT,
            secrets=self._secrets,
        )


def _adapt(value: Any) -> Any:
    """JSON-shaped arguments go as jsonb; everything else as psycopg adapts it."""
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value
