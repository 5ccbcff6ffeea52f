"""The throwaway-Postgres fixtures of tests/backends, for smoke on the real backends."""

from tests.backends.conftest import (  # noqa: F401  (pytest registers fixtures by import)
    pg_admin_dsn,
    pg_dsn,
    pg_pool,
    pg_template,
)
