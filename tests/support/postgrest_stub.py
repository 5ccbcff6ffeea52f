"""A PostgREST-compatible RPC endpoint over a real Postgres database, for tests.

Only what SupabaseStore uses: ``POST /rest/v1/rpc/<fn>`` with a JSON object of named
arguments. It behaves as PostgREST does (its documentation, "Functions as RPC"):

* the key in ``Authorization: Bearer`` (else ``apikey``) picks the role: the service key
  runs as ``service_role``, the anon key as ``anon``; any other token is 401 PGRST301;
* the function is looked up by name and argument names, like the schema cache; no match
  is 404 PGRST202 with PostgREST's message;
* arguments are converted by their declared types (``jsonb_to_record``), and the call runs
  in one transaction after ``set local role`` and ``request.jwt.claims``; a STABLE or
  IMMUTABLE function runs READ ONLY, as PostgREST does for POST;
* the answer is the function's JSON value (``null`` for NULL), 204 for ``void``;
* errors are ``{"code","message","details","hint"}`` with PostgREST's status mapping
  (PTxyz -> xyz, 42501 -> 401/403, 42883 -> 404, 23505 -> 409, P0001 -> 400, ...).

It is a real HTTP server (stdlib, a thread on 127.0.0.1), so supabase-py's real client,
httpx and JSON handling are exercised end to end.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

RPC_PREFIX = "/rest/v1/rpc/"
SCHEMA = "public"


def http_status(sqlstate: str, *, authed: bool) -> int:
    """PostgREST's SQLSTATE -> HTTP status (Error.hs mapSQLtoHTTP)."""
    if sqlstate.startswith("PT"):
        return int(sqlstate[2:]) if sqlstate[2:].isdigit() else 500
    if sqlstate == "P0001":
        return 400
    if sqlstate.startswith("P0"):
        return 500
    if sqlstate in ("23503", "23505"):
        return 409
    if sqlstate == "42501":
        return 403 if authed else 401
    if sqlstate in ("42883", "42P01"):
        return 404
    if sqlstate == "25006":
        return 405
    if sqlstate.startswith("40"):
        return 500
    if sqlstate == "57P01":
        return 503
    if sqlstate.startswith("57"):
        return 500
    if sqlstate.startswith("08"):
        return 503
    if sqlstate == "53400":
        return 500
    if sqlstate.startswith("53"):
        return 503
    return 400


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has closed its socket before the answer: PostgREST
        # finishes the transaction anyway and drops the answer; so do we, quietly.
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


class _Reply(Exception):
    """An HTTP answer decided early (auth, routing, lookup)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _error_body(
    code: str, message: str, details: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    return {"code": code, "details": details, "hint": hint, "message": message}


class PostgrestStub:
    """Start with ``with PostgrestStub(dsn, service_key=..., anon_key=...) as stub:``."""

    def __init__(self, dsn: str, *, service_key: str, anon_key: str) -> None:
        self.dsn = dsn
        self.roles = {service_key: "service_role", anon_key: "anon"}
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (fn, args), for assertions
        self._pool: list[psycopg.Connection[Any]] = []
        self._pool_lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll interval: stop() waits for the loop to notice the shutdown.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="postgrest-stub",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> PostgrestStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        with self._pool_lock:
            for conn in self._pool:
                conn.close()
            self._pool.clear()

    def __enter__(self) -> PostgrestStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- connections (PostgREST pools them too) ----------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            try:
                # autocommit: conn.transaction() below is then a real BEGIN/COMMIT, as
                # PostgREST's one transaction per request, not a savepoint.
                conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
            except psycopg.OperationalError as exc:
                raise _Reply(
                    503,
                    _error_body(
                        "PGRST000",
                        "Database connection error. Retrying the connection.",
                        str(exc).splitlines()[0] if str(exc) else None,
                    ),
                ) from None
        try:
            yield conn
        finally:
            if conn.broken or conn.closed:
                conn.close()
            else:
                with self._pool_lock:
                    self._pool.append(conn)

    # --- the request ----------------------------------------------------------------------
    def handle_rpc(self, fn: str, headers: Any, raw_body: bytes) -> tuple[int, Any]:
        token = _bearer(headers.get("Authorization")) or headers.get("apikey")
        role = self.roles.get(token or "")
        if role is None and token:
            return 401, _error_body("PGRST301", "Expected 3 parts in JWT; got 1")
        if role is None:
            return 401, _error_body("PGRST302", "Anonymous access is disabled")
        profile = headers.get("Content-Profile") or headers.get("Accept-Profile")
        if profile and profile != SCHEMA:
            return 406, _error_body(
                "PGRST106",
                "Invalid schema: " + profile,
                None,
                f"Only the following schemas are exposed: {SCHEMA}",
            )
        try:
            args = json.loads(raw_body or b"{}")
        except ValueError:
            return 400, _error_body("PGRST102", "Empty or invalid json", None, None)
        if not isinstance(args, dict):
            return 400, _error_body("PGRST102", "Empty or invalid json", None, None)
        self.requests.append((fn, args))

        with self._connection() as conn:
            routine = _find_routine(conn, fn, set(args))
            if routine is None:
                keys = ", ".join(sorted(args))
                return 404, _error_body(
                    "PGRST202",
                    f"Could not find the function {SCHEMA}.{fn}({keys}) in the schema cache",
                    f"Searched for the function {SCHEMA}.{fn} with parameters {keys} or with "
                    "a single unnamed json/jsonb parameter, but no matches were found in the "
                    "schema cache.",
                    None,
                )
            return self._execute(conn, fn, routine, args, role)

    def _execute(
        self,
        conn: psycopg.Connection[Any],
        fn: str,
        routine: dict[str, Any],
        args: dict[str, Any],
        role: str,
    ) -> tuple[int, Any]:
        names = [n for n in routine["names"] if n in args]
        call = sql.SQL("{}.{}({})").format(
            sql.Identifier(SCHEMA),
            sql.Identifier(fn),
            sql.SQL(", ").join(
                sql.SQL("{} := _args.{}").format(sql.Identifier(n), sql.Identifier(n))
                for n in names
            ),
        )
        if names:
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(routine["types"][n]))
                for n in names
            )
            query = sql.SQL("select {} from jsonb_to_record(%(args)s) as _args({})").format(
                call, columns
            )
        else:
            query = sql.SQL("select {}").format(call)
        try:
            with conn.transaction():
                if routine["volatility"] in ("s", "i"):
                    conn.execute("set transaction read only")
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true)",
                    (json.dumps({"role": role}),),
                )
                row = conn.execute(query, {"args": Jsonb(args)}).fetchone()
        except psycopg.Error as exc:
            if conn.broken:
                return 503, _error_body("PGRST000", "Database connection error", str(exc))
            code = exc.sqlstate or "XX000"
            diag = exc.diag
            return http_status(code, authed=role != "anon"), _error_body(
                code, diag.message_primary or str(exc), diag.message_detail, diag.message_hint
            )
        if routine["returns_void"]:
            return 204, None
        return 200, row[0] if row else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from PostgREST
            # Headers and body go out in two writes; with Nagle on, a kept-alive connection
            # then waits for the client's delayed ACK (~40 ms) on every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not self.path.startswith(RPC_PREFIX):
                    self._send(404, _error_body("PGRST125", f"Invalid path {self.path}"))
                    return
                fn = self.path[len(RPC_PREFIX) :].split("?", 1)[0]
                try:
                    status, payload = stub.handle_rpc(fn, self.headers, body)
                except _Reply as reply:
                    status, payload = reply.status, reply.body
                self._send(status, payload)

            def do_GET(self) -> None:
                self._send(405, _error_body("PGRST101", "Only POST is supported by this stub"))

            def _send(self, status: int, payload: Any) -> None:
                self.send_response(status)
                if status == 204:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(payload).encode()
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if status >= 400 and isinstance(payload, dict):
                    self.send_header("Proxy-Status", f"PostgREST; error={payload.get('code')}")
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def _find_routine(conn: psycopg.Connection[Any], fn: str, keys: set[str]) -> dict[str, Any] | None:
    """The schema-cache lookup: a function of that name whose parameters fit the keys."""
    rows = conn.execute(
        """
        select p.proargnames, p.proargmodes, p.pronargs, p.pronargdefaults, p.provolatile,
               array(select pg_catalog.format_type(t, null)
                       from unnest(p.proargtypes::oid[]) with ordinality as a(t, i)
                      order by i) as types,
               p.prorettype = 'pg_catalog.void'::regtype as returns_void
          from pg_catalog.pg_proc p
          join pg_catalog.pg_namespace n on n.oid = p.pronamespace
         where n.nspname = %s and p.proname = %s and p.prokind = 'f'
        """,
        (SCHEMA, fn),
    ).fetchall()
    for argnames, modes, nargs, ndefaults, volatility, types, returns_void in rows:
        names = list(argnames or [])
        if modes:  # keep input arguments only (in / inout / variadic)
            names = [n for n, m in zip(names, modes, strict=False) if m in ("i", "b", "v")]
        names = names[:nargs]
        if len(names) != nargs or any(not n for n in names):
            continue  # unnamed parameters cannot be called with named JSON keys
        required = set(names[: nargs - ndefaults])
        if keys <= set(names) and required <= keys:
            return {
                "names": names,
                "types": dict(zip(names, types, strict=True)),
                "volatility": volatility,
                "returns_void": returns_void,
            }
    return None
