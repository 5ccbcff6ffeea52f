"""JobStore on a Supabase project: PostgREST RPC to the videogen SQL functions.

Uses supabase-py with the service-role (secret) key; RPC only, never table access, so
the functions' rules are the only way in. Same functions and JSON as the Postgres store:
only the transport differs. Each RPC is one PostgREST request, hence one transaction.

supabase-py never retries a POST, and a timed-out RPC has an unknown outcome; the SQL
functions are safe to call again, so the error hint says how to check and retry.

Imported only when the supabase backend is chosen (supabase is an optional extra).
"""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import urlsplit

import httpx
from postgrest import APIError
from supabase import Client, ClientOptions, SupabaseException, create_client

from videogen_cli.errors import BackendError, ConfigError
from videogen_cli.storage.sqlfunc import SqlFunctionStore, error_from_sqlstate, one_line

# Always an httpx.Timeout: supabase-py truncates a plain number to whole seconds.
TIMEOUT = httpx.Timeout(30.0, connect=10.0)

AUTH_HINT = (
    "check SUPABASE_SERVICE_ROLE_KEY: it must be the project's service_role (secret) key, "
    "not the anon/publishable key, and belong to the project in SUPABASE_URL"
)
UNAVAILABLE_HINT = "check SUPABASE_URL and the network; the project may be paused or restarting"
TIMEOUT_HINT = (
    "the call's outcome is unknown: check with `videogen status` before retrying "
    "(generate with the same --idempotency-key is safe); check SUPABASE_URL and the network"
)


class SupabaseStore(SqlFunctionStore):
    """JobStore over supabase-py RPC. Construction makes no network call."""

    backend_name = "supabase"

    def __init__(self, url: str, key: str) -> None:
        self._host = urlsplit(url).netloc or url
        self._secrets = (key,)
        try:
            options = ClientOptions(
                postgrest_client_timeout=TIMEOUT,
                auto_refresh_token=False,
                persist_session=False,
            )
            self._client: Client = create_client(url, key, options)
            # Build the PostgREST client now, silencing supabase-py's own deprecation
            # warning about the timeout it passes along (not ours to fix).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                _ = self._client.postgrest
        except SupabaseException as exc:
            raise ConfigError(
                f"cannot use SUPABASE_URL: {one_line(str(exc), self._secrets)}",
                hint="export SUPABASE_URL=https://<project>.supabase.co",
            ) from None

    def close(self) -> None:
        # The PostgREST client (built in __init__) owns an httpx.Client; closing it twice
        # is harmless. (Its sync close method is named aclose.)
        self._client.postgrest.aclose()

    def _call(self, fn: str, args: dict[str, Any]) -> Any:
        try:
            return self._client.rpc(fn, args).execute().data
        except APIError as exc:
            raise error_from_sqlstate(
                str(exc.code) if exc.code is not None else None,
                exc.message,
                exc.details,
                exc.hint,
                backend="supabase",
                auth_hint=AUTH_HINT,
                unavailable_hint=UNAVAILABLE_HINT,
                secrets=self._secrets,
            ) from None
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"supabase at {self._host} did not answer in time ({type(exc).__name__})",
                code="backend_unavailable",
                hint=TIMEOUT_HINT,
            ) from None
        except httpx.HTTPError as exc:
            text = one_line(str(exc), self._secrets) or type(exc).__name__
            raise BackendError(
                f"cannot reach supabase at {self._host}: {text}",
                code="backend_unavailable",
                hint=UNAVAILABLE_HINT,
            ) from None
