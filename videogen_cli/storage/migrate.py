"""The Postgres/Supabase migration: read it (``videogen db sql``), apply it (``db migrate``).

The SQL ships inside the package (storage/sql/*.sql) so that an installed wheel can print
or apply it. psycopg is imported only by ``apply_migration``: printing needs no driver.
"""

from __future__ import annotations

from importlib import resources

from videogen_cli.errors import BackendError

_SQL_PACKAGE = "videogen_cli.storage"
_SQL_DIR = "sql"

_PRIVILEGE_HINT = (
    "connect as the database owner (on Supabase: the postgres user of the connection "
    "string): creating roles, tables, functions and policies needs it"
)
_RETRY_HINT = "the transaction was rolled back, nothing changed; fix the cause and run it again"


def migration_names() -> list[str]:
    """The migration files, in the order they apply."""
    folder = resources.files(_SQL_PACKAGE).joinpath(_SQL_DIR)
    return sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql"))


def migration_sql() -> str:
    """The whole migration as one SQL script (no BEGIN/COMMIT: the caller decides)."""
    folder = resources.files(_SQL_PACKAGE).joinpath(_SQL_DIR)
    return "\n".join(
        folder.joinpath(name).read_text(encoding="utf-8") for name in migration_names()
    )


def apply_migration(dsn: str) -> None:
    """Apply the migration in one transaction. Applying it again is harmless."""
    import psycopg  # only here: `videogen db sql` must work without the driver

    from videogen_cli.storage.postgres import connect, dsn_secrets
    from videogen_cli.storage.sqlfunc import one_line

    script = migration_sql()
    conn = connect(dsn, autocommit=False)
    try:
        # Without parameters psycopg sends the script as one simple query, so the many
        # statements run in the single transaction opened by autocommit=False.
        conn.execute(script)
        conn.commit()
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
    finally:
        conn.close()
