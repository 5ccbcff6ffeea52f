"""The Postgres/Supabase schema: print it (``videogen db sql``), apply it (``db migrate``).

Two kinds of SQL ship inside the package (storage/sql/), so that an installed wheel can
print or apply them:

* numbered migrations, ``sql/migrations/NNN_name.sql``: schema changes (tables, ALTERs,
  data), each applied once and recorded in ``videogen_private.schema_migrations``
  (version, name, checksum, applied_at). A shipped migration is never edited: a new
  change is a new file.
* ``sql/functions.sql``: the functions, grants and row-level security, re-created on
  every migrate (everything in it is ``create or replace`` / idempotent).

``apply_migration`` runs, in ONE transaction under an advisory lock: the bootstrap (the
migrations table; a database migrated before migrations were recorded has migration 001
recorded as applied, since its tables exist), the missing migrations, then the
functions. ``migration_sql`` prints the same as one script for Supabase's migration
runner, each migration guarded by its record, so it applies over any earlier schema,
again and again.

psycopg is imported only by ``apply_migration``: printing needs no driver.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from videogen_cli.errors import BackendError, ConfigError

_SQL_PACKAGE = "videogen_cli.storage"
_MIGRATIONS_DIR = ("sql", "migrations")
_FUNCTIONS_FILE = ("sql", "functions.sql")
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Any session applying the schema takes this lock first (the value is arbitrary, fixed).
LOCK_KEY = 7160330771
MIGRATIONS_TABLE = "videogen_private.schema_migrations"
_RULE = "-- " + "-" * 87

_PRIVILEGE_HINT = (
    "connect as the database owner (on Supabase: the postgres user of the connection "
    "string): creating roles, tables, functions and policies needs it"
)
_RETRY_HINT = "the transaction was rolled back, nothing changed; fix the cause and run it again"
DRIVER_HINT = (
    "install the Postgres driver: pip install 'psycopg[binary]' "
    "(from a checkout: pip install -e '.[postgres]'), or print the SQL with: videogen db sql"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the file name without .sql, e.g. "002_money_safety"
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationReport:
    """What one ``apply_migration`` did."""

    applied: tuple[str, ...]  # migrations applied now, in order
    baselined: bool  # 001 was recorded as applied, not run (a database of before records)
    current: str  # the newest migration the database now has


def migrations() -> list[Migration]:
    """The numbered migrations, in the order they apply."""
    folder = resources.files(_SQL_PACKAGE).joinpath(*_MIGRATIONS_DIR)
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match.group(1)), entry.name[:-4], text))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise AssertionError(f"migrations must be numbered 001, 002, … without gaps: {versions}")
    return found


def functions_sql() -> str:
    """The functions, grants and policies (re-created on every migrate)."""
    return resources.files(_SQL_PACKAGE).joinpath(*_FUNCTIONS_FILE).read_text(encoding="utf-8")


def bootstrap_sql() -> str:
    """The lock, the migrations table, and the baseline of a database of before records."""
    first = migrations()[0]
    return f"""-- Two sessions migrating at once would race on "if not exists" and on the records.
select pg_catalog.pg_advisory_xact_lock({LOCK_KEY});

create schema if not exists videogen_private;

-- One row per numbered migration applied (videogen_cli/storage/sql/migrations/).
create table if not exists {MIGRATIONS_TABLE} (
  version    integer primary key,
  name       text not null,
  checksum   text not null,
  baseline   boolean not null default false,
  applied_at timestamptz not null default now()
);

-- A database migrated before migrations were recorded has the tables of {first.name}:
-- record it as applied (baseline) instead of running it again.
insert into {MIGRATIONS_TABLE} (version, name, checksum, baseline)
select {first.version}, '{first.name}', '{first.checksum}', true
 where pg_catalog.to_regclass('public.video_jobs') is not null
   and not exists (select 1 from {MIGRATIONS_TABLE})
on conflict (version) do nothing;
"""


def _record_sql(migration: Migration) -> str:
    return (
        f"insert into {MIGRATIONS_TABLE} (version, name, checksum) values "
        f"({migration.version}, '{migration.name}', '{migration.checksum}')"
    )


def _guarded(migration: Migration) -> str:
    """The migration run only when its record is missing (for the one-script form)."""
    tag = f"$videogen_{migration.name}$"
    if tag in migration.sql:
        raise AssertionError(f"{migration.name} contains its own quoting tag {tag}")
    return f"""{_RULE}
-- Migration {migration.name} (runs once: skipped when recorded as applied)
{_RULE}
do $videogen_migrate$
begin
  if not exists (select 1 from {MIGRATIONS_TABLE} where version = {migration.version}) then
    execute {tag}
{migration.sql}
{tag};
    {_record_sql(migration)};
  end if;
end
$videogen_migrate$;
"""


def migration_sql() -> str:
    """The whole schema as one script (no BEGIN/COMMIT: the caller decides), for
    ``videogen db sql``: a Supabase project saves it as a migration. Applying it over any
    earlier videogen schema, or again, runs only what is missing."""
    header = (
        "-- videogen: the Postgres schema, printed by `videogen db sql`.\n"
        "-- Apply with `videogen db migrate`, or save as supabase/migrations/<ts>_videogen.sql.\n"
        "-- Runs on a fresh Postgres (13+; tested on 15) or a Supabase project, over any\n"
        "-- earlier videogen schema, and again: each numbered migration runs once (recorded in\n"
        f"-- {MIGRATIONS_TABLE}); the functions, grants and policies are re-created.\n\n"
    )
    parts = [header, bootstrap_sql()]
    parts.extend(_guarded(m) for m in migrations())
    parts.append(functions_sql())
    return "\n".join(parts)


def apply_migration(dsn: str) -> MigrationReport:
    """Apply the missing migrations and re-create the functions, in one transaction."""
    try:
        import psycopg  # only here: `videogen db sql` must work without the driver
    except ImportError:
        raise ConfigError(
            "`videogen db migrate` needs the Postgres driver psycopg, which is not installed",
            code="driver_missing",
            hint=DRIVER_HINT,
        ) from None

    from videogen_cli.storage.postgres import connect, dsn_secrets
    from videogen_cli.storage.sqlfunc import one_line

    conn = connect(dsn, autocommit=False)
    try:
        report = _apply(conn)
        conn.commit()
        return report
    except psycopg.Error as exc:
        if not conn.broken:
            conn.rollback()
        sqlstate = exc.sqlstate or "connection"
        text = one_line(exc.diag.message_primary or str(exc), dsn_secrets(dsn))
        raise BackendError(
            f"the migration failed ({sqlstate}: {text})",
            code="migration_failed",
            hint=_PRIVILEGE_HINT if sqlstate == "42501" else _RETRY_HINT,
        ) from None
    except BaseException:
        if not conn.broken:
            conn.rollback()
        raise
    finally:
        conn.close()


def _apply(conn: Any) -> MigrationReport:
    # Without parameters psycopg sends each script as one simple query; all of them run
    # in the single transaction opened by autocommit=False.
    conn.execute(bootstrap_sql())
    recorded = {
        int(version): (str(name), str(checksum), bool(baseline))
        for version, name, checksum, baseline in conn.execute(
            f"select version, name, checksum, baseline from {MIGRATIONS_TABLE}"
        ).fetchall()
    }
    known = migrations()
    newest = max(recorded, default=0)
    if newest > len(known):
        raise BackendError(
            f"the database has migration {recorded[newest][0]}, newer than this videogen "
            f"(which knows up to {known[-1].name})",
            code="migration_newer",
            hint="upgrade videogen before migrating this database; nothing was changed",
        )
    for migration in known:
        if migration.version in recorded and recorded[migration.version][1] != migration.checksum:
            raise BackendError(
                f"migration {migration.name} differs from the one applied to this database "
                "(checksum mismatch)",
                code="migration_changed",
                hint="a shipped migration must never be edited: put the change in a new "
                "numbered migration; nothing was changed",
            )
    applied = []
    for migration in known:
        if migration.version not in recorded:
            conn.execute(migration.sql)
            conn.execute(_record_sql(migration))
            applied.append(migration.name)
    conn.execute(functions_sql())
    baselined = 1 in recorded and recorded[1][2]
    return MigrationReport(tuple(applied), baselined, known[-1].name)
