"""The migration: idempotent, seeded like the catalog, locked down (grants and RLS).

Runs on a plain Postgres, where the migration creates Supabase's roles and auth.uid()
itself; one test first gives the database Supabase's default privileges (everything in
`public` granted to anon and authenticated) to prove the migration takes them back.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import errors as pg_errors

from tests.backends.conftest import ANON_KEY, SERVICE_KEY
from tests.support.postgrest_stub import PostgrestStub
from videogen_cli.catalog import SEED_MODELS, settings_to_json
from videogen_cli.domain import JobStatus, NewJob
from videogen_cli.errors import BackendError
from videogen_cli.ports import NEVER_SUBMITTED
from videogen_cli.storage.migrate import apply_migration, functions_sql, migration_sql, migrations
from videogen_cli.storage.postgres import PostgresStore
from videogen_cli.storage.supabase import SupabaseStore

pytestmark = pytest.mark.postgres

API_FUNCTIONS = {
    "videogen_get_model",
    "videogen_list_models",
    "videogen_get_balance",
    "videogen_get_job",
    "videogen_list_jobs",
    "videogen_get_idempotency_record",
    "videogen_list_ledger",
    "videogen_grant_credits",
    "videogen_create_job",
    "videogen_record_submission",
    "videogen_apply_status",
    "videogen_fail_job",
    "videogen_refund_job",
    "videogen_note_not_found",
    "videogen_list_unfinished_jobs",
    "videogen_sweep_stranded",
}
# Every money function with arguments that would succeed for service_role.
MONEY_CALLS = {
    "videogen_grant_credits": "p_user_id => %(user)s, p_credits => 5, p_reason => 'x', "
    "p_operator => 'x', p_idempotency_key => 'g'",
    "videogen_create_job": "p_user_id => %(user)s, p_idempotency_key => 'k', "
    "p_fingerprint => 'f', p_model => 'veo3.1', p_prompt => 'p', p_image_url => null, "
    "p_settings => '{}', p_cost => 1, p_request => '{}'",
    "videogen_record_submission": "p_job_id => %(job)s, p_endpoint_id => 'e', "
    "p_request_id => 'r', p_status_url => null, p_response_url => null, "
    "p_cancel_url => null, p_queue_position => null, p_provider => 'fal', "
    "p_provider_origin => 'https://queue.fal.run'",
    "videogen_apply_status": "p_job_id => %(job)s, p_status => 'processing'",
    "videogen_fail_job": "p_job_id => %(job)s, p_error => 'x'",
    "videogen_refund_job": "p_job_id => %(job)s, p_credits => null, p_reason => 'x', "
    "p_operator => 'x'",
    "videogen_note_not_found": "p_job_id => %(job)s",
    # As pg_cron runs it: no arguments.
    "videogen_sweep_stranded": "",
}


@pytest.fixture
def migrated_dsn(pg_empty_dsn: str) -> str:
    """A database of its own (these tests change grants and models), freshly migrated."""
    apply_migration(pg_empty_dsn)
    return pg_empty_dsn


def one(dsn: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        row = cursor.fetchone() if cursor.description else None
    return row[0] if row else None


def seed_two_users(dsn: str) -> tuple[str, str, str]:
    """Users A and B with one job each; returns (a, b, a's job id)."""
    store = PostgresStore(dsn)
    try:
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        job_ids = []
        for user in (a, b):
            store.grant_credits(user, 20, "setup", "pytest")
            job = store.create_job(
                NewJob(user, f"key-{user}", f"fp-{user}", "veo3.1", "p", None, {}, 4, {})
            ).job
            job_ids.append(job.job_id)
        return a, b, job_ids[0]
    finally:
        store.close()


@pytest.fixture
def as_role(migrated_dsn: str) -> Iterator[Any]:
    yield from _role_runner(migrated_dsn)


@pytest.fixture
def as_role_pooled(pg_dsn: str) -> Iterator[Any]:
    yield from _role_runner(pg_dsn)


def _role_runner(dsn: str) -> Iterator[Any]:
    """Run statements as a role with JWT claims, the way PostgREST sets up a request."""
    conn = psycopg.connect(dsn)  # not autocommit: `set local` needs a transaction

    def run(role: str, query: str, params: Any = None, *, sub: str | None = None) -> list[Any]:
        claims = {"role": role} | ({"sub": sub} if sub else {})
        try:
            conn.execute(f"set local role {role}")
            conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            return conn.execute(query, params).fetchall()
        finally:
            conn.rollback()

    yield run
    conn.close()


# --- the script --------------------------------------------------------------------------


def test_the_script_is_one_idempotent_unit() -> None:
    script = migration_sql()
    # No transaction control: `db migrate` wraps it in one transaction, Supabase's
    # migration runner in its own.
    assert not re.search(r"^\s*(begin|commit|rollback)\s*;", script, re.IGNORECASE | re.MULTILINE)
    assert script.rstrip().endswith("notify pgrst, 'reload schema';")
    for name in API_FUNCTIONS:
        assert f"function public.{name}(" in script


def test_applying_twice_is_harmless(pg_empty_dsn: str) -> None:
    apply_migration(pg_empty_dsn)
    store = PostgresStore(pg_empty_dsn)
    user = str(uuid.uuid4())
    store.grant_credits(user, 7, "before", "pytest")
    one(pg_empty_dsn, "update public.models set active = false where slug = 'sora-2-t2v'")

    apply_migration(pg_empty_dsn)

    assert store.get_balance(user) == 7
    assert len(store.list_models()) == 4
    # An operator's switch survives a re-apply.
    assert store.get_model("sora-2-t2v").active is False  # type: ignore[union-attr]
    functions = one(
        pg_empty_dsn,
        "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'public' and p.proname like 'videogen%%'",
    )
    assert functions == len(API_FUNCTIONS)
    policies = one(pg_empty_dsn, "select count(*) from pg_policies where schemaname = 'public'")
    assert policies == 4
    store.close()


def test_models_are_seeded_from_the_catalog(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    assert store.list_models() == sorted(SEED_MODELS, key=lambda m: m.slug)
    store.close()
    with psycopg.connect(pg_dsn) as conn:
        rows: dict[str, Any] = dict(
            conn.execute("select slug, allowed_settings from public.models").fetchall()
        )
    assert rows == {m.slug: settings_to_json(m.settings) for m in SEED_MODELS}


def test_roles_and_auth_uid_exist_on_plain_postgres(pg_dsn: str, as_role_pooled: Any) -> None:
    as_role = as_role_pooled
    with psycopg.connect(pg_dsn) as conn:
        roles: dict[str, bool] = dict(
            conn.execute(
                "select rolname, rolbypassrls from pg_roles "
                "where rolname in ('anon', 'authenticated', 'service_role')"
            ).fetchall()
        )
    assert roles == {"anon": False, "authenticated": False, "service_role": True}
    sub = str(uuid.uuid4())
    assert as_role("authenticated", "select auth.uid()::text", sub=sub) == [(sub,)]
    assert as_role("anon", "select auth.uid()") == [(None,)]


# --- privileges --------------------------------------------------------------------------


def test_only_service_role_may_execute_the_functions(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            """
            select p.proname,
                   has_function_privilege('anon', p.oid, 'execute'),
                   has_function_privilege('authenticated', p.oid, 'execute'),
                   has_function_privilege('service_role', p.oid, 'execute'),
                   exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0),
                   p.prosecdef,
                   p.proconfig
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where (n.nspname = 'public' and p.proname like 'videogen%%')
                or n.nspname = 'videogen_private'
            """
        ).fetchall()
        private_usage = conn.execute(
            "select r, has_schema_privilege(r, 'videogen_private', 'usage') "
            "from unnest(array['anon', 'authenticated', 'service_role']) r"
        ).fetchall()
    seen = set()
    for name, anon, authenticated, service, public, definer, config in rows:
        seen.add(name)
        assert not anon and not authenticated and not public, name
        assert config == ['search_path=""'], name
        if name.startswith("videogen_"):
            assert service and definer, name
        else:  # internal helpers: nobody but the owner
            assert not service, name
    assert {n for n in seen if n.startswith("videogen_")} == API_FUNCTIONS
    assert seen - API_FUNCTIONS == {
        "as_uuid",
        "ts",
        "job_json",
        "model_json",
        "ledger_json",
        "fail_locked_job",
    }
    assert private_usage == [("anon", False), ("authenticated", False), ("service_role", False)]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_app_roles_cannot_call_money_functions(pg_dsn: str, as_role_pooled: Any, role: str) -> None:
    a, _, job = seed_two_users(pg_dsn)
    for fn, args in sorted(MONEY_CALLS.items()):
        with pytest.raises(pg_errors.InsufficientPrivilege):
            as_role_pooled(role, f"select public.{fn}({args})", {"user": a, "job": job}, sub=a)
        # service_role may: the same call runs (a refund of a pending job is refused by
        # the function's own rule, which proves it ran).
        try:
            as_role_pooled("service_role", f"select public.{fn}({args})", {"user": a, "job": job})
        except psycopg.Error as exc:
            assert exc.sqlstate == "PT409", exc


def test_the_anon_key_is_refused_through_the_api(pg_dsn: str) -> None:
    user = str(uuid.uuid4())
    with PostgrestStub(pg_dsn, service_key=SERVICE_KEY, anon_key=ANON_KEY) as stub:
        store = SupabaseStore(stub.url, ANON_KEY)
        with pytest.raises(BackendError) as err:
            store.grant_credits(user, 100, "free money", "mallory")
        store.close()
        assert err.value.code == "backend_auth"
        assert "SUPABASE_SERVICE_ROLE_KEY" in (err.value.hint or "")
        assert ANON_KEY not in err.value.message

        answer = httpx.post(
            f"{stub.url}/rest/v1/rpc/videogen_refund_job",
            headers={"apikey": ANON_KEY, "Authorization": f"Bearer {ANON_KEY}"},
            json={"p_job_id": str(uuid.uuid4()), "p_credits": None, "p_reason": "x",
                  "p_operator": "x"},
        )  # fmt: skip
        assert answer.status_code == 401
        assert answer.json()["code"] == "42501"
    assert one(pg_dsn, "select count(*) from public.credit_ledger") == 0


def test_row_level_security_shows_users_only_their_rows(migrated_dsn: str, as_role: Any) -> None:
    a, b, _ = seed_two_users(migrated_dsn)
    one(migrated_dsn, "update public.models set active = false where slug = 'sora-2-i2v'")

    for table in ("video_jobs", "user_credits", "credit_ledger"):
        rows = as_role("authenticated", f"select distinct user_id::text from public.{table}", sub=a)
        assert rows == [(a,)], table
        assert as_role("authenticated", f"select count(*) from public.{table}") == [(0,)], table
    models = as_role("authenticated", "select slug from public.models order by slug", sub=a)
    assert [m for (m,) in models] == ["sora-2-t2v", "veo3.1", "veo3.1-i2v"]

    with pytest.raises(pg_errors.InsufficientPrivilege):
        as_role("authenticated", "select * from public.idempotency_keys", sub=a)
    with pytest.raises(pg_errors.InsufficientPrivilege):
        as_role(
            "authenticated",
            "update public.user_credits set balance = 1000000 where user_id = %s",
            (a,),
            sub=a,
        )
    with pytest.raises(pg_errors.InsufficientPrivilege):
        as_role(
            "authenticated",
            "insert into public.credit_ledger (user_id, delta, kind) values (%s, 5, 'grant')",
            (a,),
            sub=a,
        )
    for table in ("video_jobs", "user_credits", "credit_ledger", "models"):
        with pytest.raises(pg_errors.InsufficientPrivilege):
            as_role("anon", f"select * from public.{table}")
    assert b != a


def test_supabase_default_privileges_are_taken_back(pg_empty_dsn: str) -> None:
    # What a Supabase project does for every new object in `public` (its default
    # privileges: everything granted to anon and authenticated).
    with psycopg.connect(pg_empty_dsn, autocommit=True) as conn:
        conn.execute(
            """
            do $$ begin
              if not exists (select 1 from pg_roles where rolname = 'anon') then
                create role anon nologin; end if;
              if not exists (select 1 from pg_roles where rolname = 'authenticated') then
                create role authenticated nologin; end if;
              if not exists (select 1 from pg_roles where rolname = 'service_role') then
                create role service_role nologin bypassrls; end if;
            end $$;
            alter default privileges in schema public
              grant all on tables to anon, authenticated, service_role;
            alter default privileges in schema public
              grant all on functions to anon, authenticated, service_role;
            alter default privileges in schema public
              grant all on sequences to anon, authenticated, service_role;
            """
        )
    apply_migration(pg_empty_dsn)

    with psycopg.connect(pg_empty_dsn) as conn:
        leaks = conn.execute(
            """
            select 'function ' || p.proname || ' to ' || r.rolname
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             cross join (values ('anon'), ('authenticated')) r(rolname)
             where ((n.nspname = 'public' and p.proname like 'videogen%%')
                    or n.nspname = 'videogen_private')
               and has_function_privilege(r.rolname, p.oid, 'execute')
            union all
            select 'table ' || c.relname || ' ' || priv || ' to ' || r.rolname
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             cross join (values ('anon'), ('authenticated')) r(rolname)
             cross join unnest(array['insert', 'update', 'delete', 'truncate']) priv
             where n.nspname = 'public' and c.relkind = 'r'
               and has_table_privilege(r.rolname, c.oid, priv)
            union all
            select 'anon may select ' || c.relname
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relkind = 'r'
               and has_table_privilege('anon', c.oid, 'select')
            """
        ).fetchall()
    assert leaks == []


# --- failures ----------------------------------------------------------------------------


def test_a_missing_migration_is_named_in_the_hint(pg_empty_dsn: str) -> None:
    with PostgrestStub(pg_empty_dsn, service_key=SERVICE_KEY, anon_key=ANON_KEY) as stub:
        store = SupabaseStore(stub.url, SERVICE_KEY)
        with pytest.raises(BackendError) as via_api:
            store.get_job(str(uuid.uuid4()))
        store.close()
    assert via_api.value.code == "migration_missing"
    assert "PGRST202" in via_api.value.message
    assert "videogen db migrate" in (via_api.value.hint or "")

    direct = PostgresStore(pg_empty_dsn)
    with pytest.raises(BackendError) as via_sql:
        direct.apply_status(str(uuid.uuid4()), JobStatus.PROCESSING)
    direct.close()
    assert via_sql.value.code == "migration_missing"
    assert "42883" in via_sql.value.message
    assert "videogen db migrate" in (via_sql.value.hint or "")


def test_a_failed_migration_changes_nothing(pg_empty_dsn: str, pg_admin_dsn: str) -> None:
    # A role that may connect but not create anything in `public` (PostgreSQL 15+
    # default), as when the migration is run with the wrong credentials.
    weak = f"videogen_weak_{uuid.uuid4().hex[:8]}"
    one(pg_admin_dsn, f"create role {weak} login")
    try:
        weak_dsn = psycopg.conninfo.make_conninfo(pg_empty_dsn, user=weak)
        with pytest.raises(BackendError) as err:
            apply_migration(weak_dsn)
        assert err.value.code == "migration_failed"
        assert "42501" in err.value.message
        assert "owner" in (err.value.hint or "")
        assert one(pg_empty_dsn, "select to_regclass('public.video_jobs')") is None
    finally:
        one(pg_empty_dsn, f"drop owned by {weak}")
        one(pg_admin_dsn, f"drop role {weak}")


def test_an_unreachable_database_is_unavailable_without_leaking_the_password() -> None:
    dsn = "postgresql://videogen:s3cret-pa55@127.0.0.1:1/videogen"
    with pytest.raises(BackendError) as err:
        apply_migration(dsn)
    assert err.value.code == "backend_unavailable"
    assert "VIDEOGEN_DATABASE_URL" in (err.value.hint or "")
    assert "s3cret-pa55" not in err.value.message

    store = PostgresStore(dsn)
    with pytest.raises(BackendError) as via_store:
        store.get_balance(str(uuid.uuid4()))
    assert via_store.value.code == "backend_unavailable"
    assert "s3cret-pa55" not in via_store.value.message


# --- numbered migrations -----------------------------------------------------------------


def test_migrations_are_recorded_and_applied_once(pg_empty_dsn: str) -> None:
    first = apply_migration(pg_empty_dsn)
    assert first.applied == tuple(m.name for m in migrations())
    assert (first.baselined, first.current) == (False, migrations()[-1].name)
    assert apply_migration(pg_empty_dsn).applied == ()
    with psycopg.connect(pg_empty_dsn) as conn:
        rows = conn.execute(
            "select version, name, checksum from videogen_private.schema_migrations order by 1"
        ).fetchall()
    assert rows == [(m.version, m.name, m.checksum) for m in migrations()]


def test_the_migrations_table_is_hidden_from_every_api_role(migrated_dsn: str) -> None:
    with psycopg.connect(migrated_dsn) as conn:
        rows = conn.execute(
            "select r, has_table_privilege(r, 'videogen_private.schema_migrations', 'select') "
            "from unnest(array['anon', 'authenticated', 'service_role']) r"
        ).fetchall()
    assert rows == [("anon", False), ("authenticated", False), ("service_role", False)]


def test_an_edited_or_newer_migration_is_refused_and_changes_nothing(migrated_dsn: str) -> None:
    one(migrated_dsn, "update videogen_private.schema_migrations set checksum = 'x' "
        "where version = 2")  # fmt: skip
    with pytest.raises(BackendError) as edited:
        apply_migration(migrated_dsn)
    assert edited.value.code == "migration_changed"
    assert "002_money_safety" in edited.value.message
    one(migrated_dsn, "update videogen_private.schema_migrations set checksum = %s "
        "where version = 2", (migrations()[1].checksum,))  # fmt: skip

    one(migrated_dsn, "insert into videogen_private.schema_migrations (version, name, checksum)"
        " values (99, '099_future', 'f')")  # fmt: skip
    one(migrated_dsn, "drop function public.videogen_get_balance(text)")
    with pytest.raises(BackendError) as newer:
        apply_migration(migrated_dsn)
    assert newer.value.code == "migration_newer"
    assert "upgrade videogen" in (newer.value.hint or "")
    # Rolled back: the functions were not re-created by the refused run.
    assert one(migrated_dsn, "select to_regprocedure('public.videogen_get_balance(text)')") is None


def test_the_sweeper_error_text_is_the_one_of_the_code() -> None:
    # videogen_sweep_stranded and the core's never-submitted rule must fail jobs alike.
    assert f"'{NEVER_SUBMITTED}'" in functions_sql()


def test_the_sweeper_runs_as_pg_cron_would_call_it(pg_dsn: str, as_role_pooled: Any) -> None:
    store = PostgresStore(pg_dsn)
    user = str(uuid.uuid4())
    store.grant_credits(user, 10, "setup", "pytest")
    job = store.create_job(NewJob(user, "k-cron", "f", "veo3.1", "p", None, {}, 4, {})).job
    store.close()
    one(pg_dsn, "update public.video_jobs set created_at = now() - interval '11 minutes'")

    # pg_cron runs `select public.videogen_sweep_stranded()` as the job's owner.
    answer = one(pg_dsn, "select public.videogen_sweep_stranded()")

    assert answer == {"swept": 1, "refunded_credits": 4, "job_ids": [job.job_id],
                      "dry_run": False}  # fmt: skip
    assert one(pg_dsn, "select balance from public.user_credits where user_id = %s", (user,)) == 10
    assert as_role_pooled("service_role", "select public.videogen_sweep_stranded('1 hour')") == [
        ({"swept": 0, "refunded_credits": 0, "job_ids": [], "dry_run": False},)
    ]
    with pytest.raises(pg_errors.InsufficientPrivilege):
        as_role_pooled("authenticated", "select public.videogen_sweep_stranded()", sub=user)
