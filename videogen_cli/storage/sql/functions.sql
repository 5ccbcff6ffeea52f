-- videogen functions: one SQL function per JobStore method, their grants and the
-- row-level security policies. Re-created on every migrate, after the numbered
-- migrations (migrations/NNN_*.sql) that hold the tables.
--
-- The SQL is the contract: the CLI (PostgresStore over psycopg, SupabaseStore over
-- PostgREST RPC), future edge functions and the iOS backend all call these functions, so
-- every rule that moves money lives here, not in a client.
--
-- Conventions of every public.videogen_<method> function:
--   * named p_... arguments (PostgREST passes JSON keys by name), ids as text so that a
--     malformed id is "not found" or a clean PT400 instead of a cast error;
--   * returns jsonb ("not found" reads return JSON null, lists are arrays);
--   * errors: raise sqlstate 'PTxyz' using message = '<machine_code>' (the codes of
--     videogen_cli/ports.py), detail = a human sentence, hint = the fix. PostgREST turns
--     PTxyz into HTTP xyz and the client branches on the code:
--       PT400 invalid_input, PT402 insufficient_credits, PT404 user/job/model_not_found,
--       PT409 job_not_refundable / already_refunded, PT422 idempotency_key_reused /
--       refund_exceeds_credits;
--   * security definer + search_path = '' + fully qualified names: the tables are
--     reachable only through these functions, whose EXECUTE belongs to service_role;
--   * correct on their own at READ COMMITTED under any concurrency, and safe to call
--     again after a lost answer (grant_credits: with an idempotency key).


-- ---------------------------------------------------------------------------------------
-- Supabase's roles and auth.uid(), for a plain Postgres (tests, self-hosted). A Supabase
-- project already has all of them; nothing here replaces theirs.
-- ---------------------------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

grant usage on schema public to anon, authenticated, service_role;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_namespace where nspname = 'auth') then
    create schema auth;
    grant usage on schema auth to anon, authenticated, service_role;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_proc p
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'auth' and p.proname = 'uid'
  ) then
    -- Same reading as Supabase's own auth.uid(): the JWT's sub claim set by PostgREST.
    execute $fn$
      create function auth.uid() returns uuid
      language sql stable
      set search_path = ''
      as $body$
        select coalesce(
          nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
          nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb
            ->> 'sub'
        )::uuid
      $body$
    $fn$;
    grant execute on function auth.uid() to anon, authenticated, service_role;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------
-- Internal helpers, in a schema of their own: PostgREST exposes only `public`, where a
-- function taking a table row would even appear as a computed column of that table.
-- Nobody but the owner (who also owns the API functions) may use them.
-- ---------------------------------------------------------------------------------------
create schema if not exists videogen_private;
revoke all on schema videogen_private from public, anon, authenticated, service_role;
revoke all on table videogen_private.schema_migrations
  from public, anon, authenticated, service_role;

-- Signatures replaced by later versions: CREATE OR REPLACE with other arguments adds an
-- overload instead, which PostgREST cannot choose between.
drop function if exists public.videogen_grant_credits(text, bigint, text, text);
drop function if exists public.videogen_record_submission(
  text, text, text, text, text, text, bigint);
drop function if exists public.videogen_refund_job(text, bigint, text, text);

-- A text id as uuid, or NULL when it is not a canonical UUID (so callers decide between
-- "not found" and PT400 instead of failing with a cast error).
create or replace function videogen_private.as_uuid(p_value text)
returns uuid
language sql immutable
set search_path = ''
as $$
  select case
    when p_value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    then p_value::uuid
  end
$$;

-- One timestamp format in every answer, whatever the session's TimeZone: UTC with 'Z'.
create or replace function videogen_private.ts(p_value timestamptz)
returns text
language sql immutable
set search_path = ''
as $$
  select pg_catalog.to_char(p_value at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

create or replace function videogen_private.job_json(j public.video_jobs)
returns jsonb
language sql stable
set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'job_id', j.job_id,
    'user_id', j.user_id,
    'model', j.model_slug,
    'model_id', j.model_id,
    'endpoint_id', j.endpoint_id,
    'status', j.status,
    'prompt', j.prompt,
    'image_url', j.image_url,
    'settings', j.settings,
    'credits_used', j.credits_used,
    'refunded_credits', j.refunded_credits,
    'provider_request_id', j.provider_request_id,
    'status_url', j.status_url,
    'response_url', j.response_url,
    'cancel_url', j.cancel_url,
    'queue_position', j.queue_position,
    'video_url', j.video_url,
    'thumbnail_url', j.thumbnail_url,
    'error', j.error,
    'idempotency_key', j.idempotency_key,
    'created_at', videogen_private.ts(j.created_at),
    'updated_at', videogen_private.ts(j.updated_at),
    'submitted_at', videogen_private.ts(j.submitted_at),
    'provider', j.provider,
    'provider_origin', j.provider_origin,
    'not_found_count', j.not_found_count
  )
$$;

create or replace function videogen_private.model_json(m public.models)
returns jsonb
language sql stable
set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'id', m.id,
    'slug', m.slug,
    'name', m.name,
    'endpoint_id', m.endpoint_id,
    'credits_per_second', m.credits_per_second,
    'requires_image', m.requires_image,
    'allowed_settings', m.allowed_settings,
    'active', m.active
  )
$$;

create or replace function videogen_private.ledger_json(l public.credit_ledger)
returns jsonb
language sql stable
set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'id', l.id,
    'user_id', l.user_id,
    'job_id', l.job_id,
    'delta', l.delta,
    'kind', l.kind,
    'reason', l.reason,
    'operator', l.operator,
    'created_at', videogen_private.ts(l.created_at)
  )
$$;

-- Fail a job the caller has locked (SELECT ... FOR UPDATE) and refund what it used,
-- exactly once: one 'refund' row "job failed: <error>" by the system operator (ports.py
-- SYSTEM_OPERATOR). A terminal job is returned unchanged. Shared by videogen_fail_job and
-- videogen_sweep_stranded.
create or replace function videogen_private.fail_locked_job(
  p_job public.video_jobs,
  p_error text
)
returns public.video_jobs
language plpgsql volatile
set search_path = ''
as $$
declare
  v_job public.video_jobs := p_job;
  v_owed bigint;
  v_ledger_id bigint;
begin
  if v_job.status in ('completed', 'failed') then
    return v_job;
  end if;

  v_owed := v_job.credits_used - v_job.refunded_credits;
  if v_owed > 0 then
    insert into public.credit_ledger (user_id, job_id, delta, kind, reason, operator)
    values (v_job.user_id, v_job.job_id, v_owed, 'refund', 'job failed: ' || p_error,
            'videogen')
    on conflict (job_id, kind) do nothing
    returning id into v_ledger_id;
    if v_ledger_id is not null then
      update public.user_credits c
         set balance = c.balance + v_owed, updated_at = pg_catalog.now()
       where c.user_id = v_job.user_id;
    else
      v_owed := 0;  -- a refund row exists already (cannot happen for a live job): no money
    end if;
  end if;

  update public.video_jobs j
     set status = 'failed',
         error = p_error,
         queue_position = null,
         refunded_credits = j.refunded_credits + v_owed,
         updated_at = pg_catalog.now()
   where j.job_id = v_job.job_id
  returning * into v_job;
  return v_job;
end
$$;

-- ---------------------------------------------------------------------------------------
-- Reads
-- ---------------------------------------------------------------------------------------

-- The model with this slug or id (active or not), or null.
create or replace function public.videogen_get_model(p_slug_or_id text)
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select videogen_private.model_json(m)
    from public.models m
   where m.slug = p_slug_or_id or m.id = videogen_private.as_uuid(p_slug_or_id)
   order by (m.slug = p_slug_or_id) desc
   limit 1
$$;

-- All models, ordered by slug.
create or replace function public.videogen_list_models()
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select coalesce(
    pg_catalog.jsonb_agg(videogen_private.model_json(m) order by m.slug), '[]'::jsonb)
    from public.models m
$$;

-- The balance (a JSON number), or null for an unknown (or malformed) user.
create or replace function public.videogen_get_balance(p_user_id text)
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select pg_catalog.to_jsonb(c.balance)
    from public.user_credits c
   where c.user_id = videogen_private.as_uuid(p_user_id)
$$;

-- The job, or null; a malformed id is simply not found.
create or replace function public.videogen_get_job(p_job_id text)
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select videogen_private.job_json(j)
    from public.video_jobs j
   where j.job_id = videogen_private.as_uuid(p_job_id)
$$;

-- Newest first; p_user_id null or '' lists every user's jobs.
create or replace function public.videogen_list_jobs(
  p_user_id text default null,
  p_limit bigint default 20
)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_user uuid := videogen_private.as_uuid(p_user_id);
begin
  if p_limit is null or p_limit < 0 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the limit must be a number >= 0', hint = 'pass a limit such as 20';
  end if;
  if coalesce(p_user_id, '') <> '' and v_user is null then
    return '[]'::jsonb;  -- a malformed user id has no jobs
  end if;
  return (
    select coalesce(
      pg_catalog.jsonb_agg(videogen_private.job_json(s.job)
                           order by (s.job).created_at desc, (s.job).job_id desc),
      '[]'::jsonb)
      from (
        -- the whole row as one typed column, so the helper gets a public.video_jobs
        select j as job from public.video_jobs j
         where v_user is null or j.user_id = v_user
         order by j.created_at desc, j.job_id desc
         limit p_limit
      ) s
  );
end
$$;

-- The stored record for this key, or null.
create or replace function public.videogen_get_idempotency_record(p_key text)
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'key', k.key,
    'user_id', k.user_id,
    'fingerprint', k.fingerprint,
    'job_id', k.job_id,
    'request', k.request,
    'created_at', videogen_private.ts(k.created_at)
  )
    from public.idempotency_keys k
   where k.key = p_key
$$;

-- The user's ledger rows, newest first ([] for an unknown user).
create or replace function public.videogen_list_ledger(p_user_id text, p_limit bigint default 50)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_limit is null or p_limit < 0 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the limit must be a number >= 0', hint = 'pass a limit such as 50';
  end if;
  return (
    select coalesce(
      pg_catalog.jsonb_agg(videogen_private.ledger_json(s.entry) order by (s.entry).id desc),
      '[]'::jsonb)
      from (
        select l as entry from public.credit_ledger l
         where l.user_id = videogen_private.as_uuid(p_user_id)
         order by l.id desc
         limit p_limit
      ) s
  );
end
$$;

-- ---------------------------------------------------------------------------------------
-- Money-moving operations: each is one transaction (one PostgREST request, or one
-- autocommit statement), so any raise undoes everything it did.
-- ---------------------------------------------------------------------------------------

-- Add credits (>= 1), creating the account when new; one 'grant' ledger row.
-- Returns {"user_id", "granted", "granted_now", "balance", "reason", "operator",
-- "idempotency_key", "ledger_id"}.
-- Without a key each call is a new grant. With p_idempotency_key (1-255 characters) the
-- first call grants and keeps the key on its ledger row; every later call with that key,
-- whatever its other arguments, moves nothing and answers granted_now = false with the
-- stored grant and the user's current balance. Grant keys are their own namespace,
-- apart from generate's idempotency keys.
create or replace function public.videogen_grant_credits(
  p_user_id text,
  p_credits bigint,
  p_reason text,
  p_operator text,
  p_idempotency_key text default null
)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := videogen_private.as_uuid(p_user_id);
  v_balance bigint;
  v_ledger_id bigint;
  v_previous public.credit_ledger;
begin
  if v_user is null then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = pg_catalog.format('user id %L is not a UUID', p_user_id),
      hint = 'pass the user''s UUID (auth.users.id)';
  end if;
  if p_credits is null or p_credits < 1 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'credits to grant must be at least 1', hint = 'pass a positive number of credits';
  end if;
  if p_idempotency_key is not null
     and pg_catalog.char_length(p_idempotency_key) not between 1 and 255 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the idempotency key must be 1 to 255 characters',
      hint = 'use a UUID or a name such as ci-fund-<run id>';
  end if;

  if p_idempotency_key is not null then
    -- Calls with one key queue here until the first commits, then find its row below.
    -- (The unique index on credit_ledger.idempotency_key is the backstop.)
    perform pg_catalog.pg_advisory_xact_lock(
      pg_catalog.hashtextextended('videogen_grant:' || p_idempotency_key, 0));
    select * into v_previous from public.credit_ledger l
     where l.idempotency_key = p_idempotency_key;
    if found then
      select c.balance into v_balance from public.user_credits c
       where c.user_id = v_previous.user_id;
      return pg_catalog.jsonb_build_object(
        'user_id', v_previous.user_id,
        'granted', v_previous.delta,
        'granted_now', false,
        'balance', v_balance,
        'reason', v_previous.reason,
        'operator', v_previous.operator,
        'idempotency_key', v_previous.idempotency_key,
        'ledger_id', v_previous.id);
    end if;
  end if;

  insert into public.user_credits as c (user_id, balance)
  values (v_user, p_credits)
  on conflict (user_id) do update
    set balance = c.balance + excluded.balance, updated_at = pg_catalog.now()
  returning c.balance into v_balance;

  insert into public.credit_ledger (user_id, job_id, delta, kind, reason, operator,
                                    idempotency_key)
  values (v_user, null, p_credits, 'grant', p_reason, p_operator, p_idempotency_key)
  returning id into v_ledger_id;

  return pg_catalog.jsonb_build_object(
    'user_id', v_user,
    'granted', p_credits,
    'granted_now', true,
    'balance', v_balance,
    'reason', p_reason,
    'operator', p_operator,
    'idempotency_key', p_idempotency_key,
    'ledger_id', v_ledger_id);
end
$$;

-- Claim the idempotency key, debit credits and insert the job, atomically.
-- Returns {"job": <job>, "replayed": bool, "balance": n}.
--   key unknown                -> debit, job (pending), key record, 'charge' row
--   key known, same fingerprint -> nothing changes; that job, replayed, current balance
--   key known, other fingerprint -> PT422 idempotency_key_reused
--   unknown model / user        -> PT404 model_not_found / user_not_found
--   balance < cost              -> PT402 insufficient_credits (the raise undoes the claim:
--                                  nothing is written, a retry with the key runs afresh)
-- The caller (the core) validates settings and computes p_cost from the model.
create or replace function public.videogen_create_job(
  p_user_id text,
  p_idempotency_key text,
  p_fingerprint text,
  p_model text,
  p_prompt text,
  p_image_url text,
  p_settings jsonb,
  p_cost bigint,
  p_request jsonb
)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := videogen_private.as_uuid(p_user_id);
  v_job_id uuid := pg_catalog.gen_random_uuid();
  v_claimed text;
  v_record public.idempotency_keys;
  v_model public.models;
  v_job public.video_jobs;
  v_balance bigint;
begin
  if p_idempotency_key is null or pg_catalog.char_length(p_idempotency_key) not between 1 and 255
  then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the idempotency key must be 1 to 255 characters',
      hint = 'use a UUID as the idempotency key';
  end if;
  if v_user is null then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = pg_catalog.format('user id %L is not a UUID', p_user_id),
      hint = 'pass the user''s UUID (auth.users.id)';
  end if;
  if coalesce(p_fingerprint, '') = '' or p_prompt is null or p_model is null then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'fingerprint, model and prompt are required', hint = 'send the whole request';
  end if;
  if p_cost is null or p_cost < 1 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the cost must be at least 1 credit', hint = 'compute the cost from the model';
  end if;

  -- 1. Claim the key. A concurrent caller with the same key blocks on the primary key
  -- until the first commits (then does nothing) or rolls back (then claims it). The
  -- lookup is a separate statement on purpose: in READ COMMITTED it takes a new snapshot
  -- and sees the winner's committed row (a single-statement CTE would not).
  for attempt in 1..3 loop
    insert into public.idempotency_keys (key, user_id, fingerprint, job_id, request)
    values (p_idempotency_key, v_user, p_fingerprint, v_job_id,
            coalesce(p_request, '{}'::jsonb))
    on conflict (key) do nothing
    returning key into v_claimed;
    exit when v_claimed is not null;

    select * into v_record from public.idempotency_keys k where k.key = p_idempotency_key;
    if found then
      if v_record.fingerprint <> p_fingerprint then
        raise sqlstate 'PT422' using message = 'idempotency_key_reused',
          detail = 'this idempotency key was first used with a different request',
          hint = 'use a new --idempotency-key for a new request';
      end if;
      select * into v_job from public.video_jobs j where j.job_id = v_record.job_id;
      select c.balance into v_balance from public.user_credits c
       where c.user_id = v_record.user_id;
      return pg_catalog.jsonb_build_object(
        'job', videogen_private.job_json(v_job), 'replayed', true, 'balance', v_balance);
    end if;
    -- The key vanished between the two statements (deleted by a cleanup): claim again.
  end loop;
  if v_claimed is null then
    raise sqlstate 'PT409' using message = 'idempotency_key_in_use',
      detail = 'the idempotency key kept changing hands', hint = 'retry the same call';
  end if;

  -- 2. The model (the core checked that it is active and the settings allowed).
  select * into v_model from public.models m
   where m.slug = p_model or m.id = videogen_private.as_uuid(p_model)
   order by (m.slug = p_model) desc
   limit 1;
  if not found then
    raise sqlstate 'PT404' using message = 'model_not_found',
      detail = pg_catalog.format('model %s not found', p_model),
      hint = 'list the models with: videogen models';
  end if;

  -- 3. Debit, never below zero. Concurrent debits of one account queue on the row lock
  -- and re-check "balance >= cost" against the committed balance.
  update public.user_credits c
     set balance = c.balance - p_cost, updated_at = pg_catalog.now()
   where c.user_id = v_user and c.balance >= p_cost
  returning c.balance into v_balance;
  if not found then
    select c.balance into v_balance from public.user_credits c where c.user_id = v_user;
    if not found then
      raise sqlstate 'PT404' using message = 'user_not_found',
        detail = pg_catalog.format('user %s not found', v_user),
        hint = 'grant the user credits first';
    end if;
    raise sqlstate 'PT402' using message = 'insufficient_credits',
      detail = pg_catalog.format(
        'insufficient credits: the job costs %s, the balance is %s', p_cost, v_balance),
      hint = 'grant credits to the user or choose a shorter duration';
  end if;

  -- 4. The job and its charge, in the same transaction as the debit.
  insert into public.video_jobs (
    job_id, user_id, model_id, model_slug, endpoint_id, prompt, image_url, settings,
    status, credits_used, idempotency_key
  ) values (
    v_job_id, v_user, v_model.id, v_model.slug, v_model.endpoint_id, p_prompt, p_image_url,
    coalesce(p_settings, '{}'::jsonb), 'pending', p_cost, p_idempotency_key
  )
  returning * into v_job;

  insert into public.credit_ledger (user_id, job_id, delta, kind, reason, operator)
  values (v_user, v_job_id, -p_cost, 'charge', 'generate', 'videogen');

  return pg_catalog.jsonb_build_object(
    'job', videogen_private.job_json(v_job), 'replayed', false, 'balance', v_balance);
end
$$;

-- Store fal's request id and URLs, and the provider that took the job (p_provider 'fal'
-- or 'simulator', p_provider_origin its queue base URL or sandbox), on a pending job that
-- has no request id yet; otherwise change nothing. Returns the job as it is after the
-- call (the caller compares request ids).
create or replace function public.videogen_record_submission(
  p_job_id text,
  p_endpoint_id text,
  p_request_id text,
  p_status_url text,
  p_response_url text,
  p_cancel_url text,
  p_queue_position bigint,
  p_provider text,
  p_provider_origin text
)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid := videogen_private.as_uuid(p_job_id);
  v_job public.video_jobs;
begin
  if coalesce(p_request_id, '') = '' then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the provider request id is required', hint = 'pass fal''s request_id';
  end if;
  if p_queue_position < 0 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the queue position must be >= 0', hint = 'pass fal''s queue_position';
  end if;
  if coalesce(p_provider, '') = '' or coalesce(p_provider_origin, '') = '' then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the provider and its origin are required',
      hint = 'pass the provider''s name and queue base URL (or sandbox)';
  end if;

  -- The WHERE clause is re-checked after any concurrent update of the row, so a job
  -- failed meanwhile (never submitted) is left alone.
  update public.video_jobs j
     set provider_request_id = p_request_id,
         endpoint_id = coalesce(p_endpoint_id, j.endpoint_id),
         status_url = p_status_url,
         response_url = p_response_url,
         cancel_url = p_cancel_url,
         queue_position = p_queue_position,
         provider = p_provider,
         provider_origin = p_provider_origin,
         not_found_count = 0,
         submitted_at = pg_catalog.now(),
         updated_at = pg_catalog.now()
   where j.job_id = v_id and j.status = 'pending' and j.provider_request_id is null
  returning * into v_job;
  if not found then
    select * into v_job from public.video_jobs j where j.job_id = v_id;
    if not found then
      raise sqlstate 'PT404' using message = 'job_not_found',
        detail = pg_catalog.format('job %s not found', p_job_id),
        hint = 'check the job id';
    end if;
  end if;
  return videogen_private.job_json(v_job);
end
$$;

-- Move a non-terminal job to pending / processing / completed. pending keeps the given
-- queue position, processing and completed clear it; completed sets the video URLs.
-- A terminal job is returned unchanged (first terminal state wins). 'failed' is refused:
-- failing refunds, which is videogen_fail_job's job.
create or replace function public.videogen_apply_status(
  p_job_id text,
  p_status text,
  p_queue_position bigint default null,
  p_video_url text default null,
  p_thumbnail_url text default null
)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid := videogen_private.as_uuid(p_job_id);
  v_job public.video_jobs;
  v_queue integer;
begin
  if p_status is null or p_status not in ('pending', 'processing', 'completed') then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = pg_catalog.format('status %L is not pending, processing or completed', p_status),
      hint = 'fail a job with videogen_fail_job: it refunds the credits';
  end if;
  if p_queue_position < 0 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the queue position must be >= 0', hint = 'pass fal''s queue_position';
  end if;

  select * into v_job from public.video_jobs j where j.job_id = v_id for update;
  if not found then
    raise sqlstate 'PT404' using message = 'job_not_found',
      detail = pg_catalog.format('job %s not found', p_job_id), hint = 'check the job id';
  end if;
  if v_job.status in ('completed', 'failed') then
    return videogen_private.job_json(v_job);
  end if;

  v_queue := case when p_status = 'pending' then p_queue_position end;
  -- Only a real change touches the row, so polling does not rewrite updated_at. An
  -- answer from the provider ends a run of "not found" answers: resetting the count is
  -- a real change.
  if (v_job.status, v_job.queue_position, v_job.video_url, v_job.thumbnail_url,
      v_job.not_found_count)
     is distinct from (p_status, v_queue, p_video_url, p_thumbnail_url, 0) then
    update public.video_jobs j
       set status = p_status,
           queue_position = v_queue,
           video_url = p_video_url,
           thumbnail_url = p_thumbnail_url,
           not_found_count = 0,
           updated_at = pg_catalog.now()
     where j.job_id = v_id
    returning * into v_job;
  end if;
  return videogen_private.job_json(v_job);
end
$$;

-- Count one "not found" answer from the job's own provider: +1 on a non-terminal job
-- (no money moves; the core fails the job only after repeated answers). A terminal job
-- is returned unchanged. videogen_apply_status resets the count.
create or replace function public.videogen_note_not_found(p_job_id text)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid := videogen_private.as_uuid(p_job_id);
  v_job public.video_jobs;
begin
  update public.video_jobs j
     set not_found_count = j.not_found_count + 1, updated_at = pg_catalog.now()
   where j.job_id = v_id and j.status in ('pending', 'processing')
  returning * into v_job;
  if not found then
    select * into v_job from public.video_jobs j where j.job_id = v_id;
    if not found then
      raise sqlstate 'PT404' using message = 'job_not_found',
        detail = pg_catalog.format('job %s not found', p_job_id), hint = 'check the job id';
    end if;
  end if;
  return videogen_private.job_json(v_job);
end
$$;

-- Mark a non-terminal job failed and refund what it used, exactly once. The row lock
-- serialises it with every other status change and refund of the job; a terminal job is
-- returned unchanged, so any number of concurrent callers refund once.
create or replace function public.videogen_fail_job(p_job_id text, p_error text)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid := videogen_private.as_uuid(p_job_id);
  v_job public.video_jobs;
begin
  select * into v_job from public.video_jobs j where j.job_id = v_id for update;
  if not found then
    raise sqlstate 'PT404' using message = 'job_not_found',
      detail = pg_catalog.format('job %s not found', p_job_id), hint = 'check the job id';
  end if;
  return videogen_private.job_json(
    videogen_private.fail_locked_job(v_job, coalesce(p_error, 'unknown error')));
end
$$;

-- Operator refund of a terminal job, at most one per job.
-- Returns {"job", "refunded_now", "refunded_credits", "balance", "balance_before",
-- "reason", "operator", "dry_run"}.
--   job refunded in full before (any refund covering all it used, including the
--   automatic refund of a failed job)  -> nothing moves, refunded_now false, the earlier
--                                         refund's reason and operator
--   job refunded in part before        -> PT409 already_refunded naming the amount,
--                                         except the very same refund again (same credits,
--                                         reason, operator: a retry after a lost answer),
--                                         answered like the full case
--   job pending / processing           -> PT409 job_not_refundable
--   credits > credits used             -> PT422 refund_exceeds_credits
--   otherwise                          -> one 'refund' row, balance raised, refunded_now
-- p_dry_run: every check, and the answer the call would give, with nothing written.
create or replace function public.videogen_refund_job(
  p_job_id text,
  p_credits bigint,
  p_reason text,
  p_operator text,
  p_dry_run boolean default false
)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid := videogen_private.as_uuid(p_job_id);
  v_dry_run boolean := coalesce(p_dry_run, false);
  v_job public.video_jobs;
  v_previous public.credit_ledger;
  v_amount bigint;
  v_before bigint;
  v_balance bigint;
  v_ledger_id bigint;
begin
  if p_credits is not null and p_credits < 1 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'credits to refund must be at least 1',
      hint = 'omit the amount to refund everything the job used';
  end if;

  select * into v_job from public.video_jobs j where j.job_id = v_id for update;
  if not found then
    raise sqlstate 'PT404' using message = 'job_not_found',
      detail = pg_catalog.format('job %s not found', p_job_id), hint = 'check the job id';
  end if;
  select c.balance into v_before from public.user_credits c where c.user_id = v_job.user_id;

  select * into v_previous from public.credit_ledger l
   where l.job_id = v_job.job_id and l.kind = 'refund';
  if found then
    if v_previous.delta >= v_job.credits_used
       or (coalesce(p_credits, v_job.credits_used) = v_previous.delta
           and p_reason is not distinct from v_previous.reason
           and p_operator is not distinct from v_previous.operator) then
      return pg_catalog.jsonb_build_object(
        'job', videogen_private.job_json(v_job),
        'refunded_now', false,
        'refunded_credits', v_job.refunded_credits,
        'balance', v_before,
        'balance_before', v_before,
        'reason', v_previous.reason,
        'operator', v_previous.operator,
        'dry_run', v_dry_run);
    end if;
    raise sqlstate 'PT409' using message = 'already_refunded',
      detail = pg_catalog.format(
        'job %s was already refunded %s of the %s credits it used (%s, by %s)',
        v_job.job_id, v_previous.delta, v_job.credits_used,
        coalesce(v_previous.reason, 'no reason'), coalesce(v_previous.operator, 'nobody')),
      hint = 'a job is refunded at most once; if more is owed, use: videogen grant';
  end if;

  if v_job.status not in ('completed', 'failed') then
    raise sqlstate 'PT409' using message = 'job_not_refundable',
      detail = pg_catalog.format(
        'job %s is still %s; only finished jobs are refunded', v_job.job_id, v_job.status),
      hint = pg_catalog.format('wait for it: videogen watch %s', v_job.job_id);
  end if;

  v_amount := coalesce(p_credits, v_job.credits_used);
  if v_amount > v_job.credits_used then
    raise sqlstate 'PT422' using message = 'refund_exceeds_credits',
      detail = pg_catalog.format(
        'cannot refund %s credits: the job used %s', v_amount, v_job.credits_used),
      hint = pg_catalog.format('use --credits %s or less', v_job.credits_used);
  end if;

  if v_dry_run then
    v_job.refunded_credits := v_amount;  -- the job as the refund would leave it; not stored
    return pg_catalog.jsonb_build_object(
      'job', videogen_private.job_json(v_job),
      'refunded_now', true,
      'refunded_credits', v_amount,
      'balance', v_before + v_amount,
      'balance_before', v_before,
      'reason', p_reason,
      'operator', p_operator,
      'dry_run', true);
  end if;

  -- The unique (job_id, kind) is the backstop should anything bypass the row lock.
  insert into public.credit_ledger (user_id, job_id, delta, kind, reason, operator)
  values (v_job.user_id, v_job.job_id, v_amount, 'refund', p_reason, p_operator)
  on conflict (job_id, kind) do nothing
  returning id into v_ledger_id;
  if v_ledger_id is null then
    raise sqlstate 'PT409' using message = 'job_not_refundable',
      detail = 'a concurrent refund of this job won', hint = 'read the job again';
  end if;

  update public.user_credits c
     set balance = c.balance + v_amount, updated_at = pg_catalog.now()
   where c.user_id = v_job.user_id
  returning c.balance into v_balance;

  update public.video_jobs j
     set refunded_credits = v_amount, updated_at = pg_catalog.now()
   where j.job_id = v_job.job_id
  returning * into v_job;

  return pg_catalog.jsonb_build_object(
    'job', videogen_private.job_json(v_job),
    'refunded_now', true,
    'refunded_credits', v_amount,
    'balance', v_balance,
    'balance_before', v_before,
    'reason', p_reason,
    'operator', p_operator,
    'dry_run', false);
end
$$;

-- ---------------------------------------------------------------------------------------
-- Reconciliation: nothing is left to a person
-- ---------------------------------------------------------------------------------------

-- Jobs not yet terminal created at least p_older_than_seconds ago, oldest first, at most
-- p_limit: what `videogen reconcile` syncs with each job's own provider.
create or replace function public.videogen_list_unfinished_jobs(
  p_older_than_seconds double precision,
  p_limit bigint
)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_older_than_seconds is null or p_older_than_seconds < 0
     or p_older_than_seconds in ('NaN'::double precision, 'Infinity'::double precision) then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the age must be a finite number of seconds >= 0', hint = 'pass e.g. 60';
  end if;
  if p_limit is null or p_limit < 0 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the limit must be a number >= 0', hint = 'pass a limit such as 100';
  end if;
  return (
    select coalesce(
      pg_catalog.jsonb_agg(videogen_private.job_json(s.job)
                           order by (s.job).created_at, (s.job).job_id),
      '[]'::jsonb)
      from (
        select j as job from public.video_jobs j
         where j.status in ('pending', 'processing')
           and j.created_at <= pg_catalog.now()
                               - pg_catalog.make_interval(secs => p_older_than_seconds)
         order by j.created_at, j.job_id
         limit p_limit
      ) s
  );
end
$$;

-- Fail and refund, exactly once, every job charged but never handed to a provider
-- (pending, no provider request id) created more than `grace` ago: the submitting
-- process stopped between the charge and the submit. Rows locked by a concurrent caller
-- (another sweeper, a `videogen status`, a late record_submission) are skipped, so any
-- number of sweepers at once move each credit once; a late submission that waited for
-- the lock finds the job failed and records nothing.
-- p_dry_run: the same selection (it locks the rows for its own short transaction, so a
-- sweeper running at that instant leaves them to the next run), nothing written.
-- Returns {"swept", "refunded_credits", "job_ids", "dry_run"}. Made for pg_cron:
--   select cron.schedule('videogen-sweep', '* * * * *',
--                        $cron$select public.videogen_sweep_stranded()$cron$);
-- The error text is videogen_cli/ports.py NEVER_SUBMITTED (a test keeps them equal).
create or replace function public.videogen_sweep_stranded(
  grace interval default '10 minutes',
  p_limit bigint default null,
  p_dry_run boolean default false
)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_error constant text :=
    'never submitted to the provider (the submitting process stopped); refunded';
  v_dry_run boolean := coalesce(p_dry_run, false);
  v_job public.video_jobs;
  v_ids text[] := '{}';
  v_credits bigint := 0;
begin
  if grace is null or grace < interval '0' then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the grace period must be an interval >= 0', hint = 'pass e.g. ''10 minutes''';
  end if;
  if p_limit < 0 then
    raise sqlstate 'PT400' using message = 'invalid_input',
      detail = 'the limit must be a number >= 0 (or null: no limit)', hint = 'pass e.g. 100';
  end if;

  for v_job in
    select * from public.video_jobs j
     where j.status = 'pending' and j.provider_request_id is null
       and j.created_at < pg_catalog.now() - grace
     order by j.created_at, j.job_id
     limit p_limit
     for update skip locked
  loop
    v_credits := v_credits + (v_job.credits_used - v_job.refunded_credits);
    v_ids := v_ids || v_job.job_id::text;
    if not v_dry_run then
      perform videogen_private.fail_locked_job(v_job, v_error);
    end if;
  end loop;

  return pg_catalog.jsonb_build_object(
    'swept', pg_catalog.cardinality(v_ids),
    'refunded_credits', v_credits,
    'job_ids', pg_catalog.to_jsonb(v_ids),
    'dry_run', v_dry_run);
end
$$;

-- ---------------------------------------------------------------------------------------
-- Privileges and row-level security
-- ---------------------------------------------------------------------------------------

-- Functions: a Supabase project grants EXECUTE on new functions to anon and
-- authenticated (and Postgres to PUBLIC); take that back from every videogen function.
-- Only service_role (the CLI's secret key, edge functions) may call the API ones.
do $$
declare
  f record;
begin
  for f in
    select p.oid::regprocedure as signature, n.nspname
      from pg_catalog.pg_proc p
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where (n.nspname = 'public' and p.proname like 'videogen\_%')
        or n.nspname = 'videogen_private'
  loop
    execute pg_catalog.format(
      'revoke all on function %s from public, anon, authenticated', f.signature);
    if f.nspname = 'public' then
      execute pg_catalog.format('grant execute on function %s to service_role', f.signature);
    else
      execute pg_catalog.format('revoke all on function %s from service_role', f.signature);
    end if;
  end loop;
end
$$;

-- Tables: no direct writes for anyone but the owner (the functions run as the owner).
-- Signed-in app users may read their own credits, jobs and ledger, and active models.
revoke all on table public.models, public.user_credits, public.video_jobs,
  public.idempotency_keys, public.credit_ledger from public, anon, authenticated;
revoke all on sequence public.credit_ledger_id_seq from public, anon, authenticated;
grant select on table public.models, public.user_credits, public.video_jobs,
  public.credit_ledger to authenticated;

alter table public.models enable row level security;
alter table public.user_credits enable row level security;
alter table public.video_jobs enable row level security;
alter table public.idempotency_keys enable row level security;  -- no policy: nobody reads
alter table public.credit_ledger enable row level security;

drop policy if exists videogen_models_read on public.models;
create policy videogen_models_read on public.models
  for select to authenticated using (active);

drop policy if exists videogen_user_credits_read_own on public.user_credits;
create policy videogen_user_credits_read_own on public.user_credits
  for select to authenticated using (user_id = (select auth.uid()));

drop policy if exists videogen_video_jobs_read_own on public.video_jobs;
create policy videogen_video_jobs_read_own on public.video_jobs
  for select to authenticated using (user_id = (select auth.uid()));

drop policy if exists videogen_credit_ledger_read_own on public.credit_ledger;
create policy videogen_credit_ledger_read_own on public.credit_ledger
  for select to authenticated using (user_id = (select auth.uid()));

-- PostgREST caches the schema: without this it answers PGRST202 for the new functions.
notify pgrst, 'reload schema';
