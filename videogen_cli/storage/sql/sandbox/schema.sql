-- The sandbox's tables (SQLite, `pragma user_version = 3`): the Postgres tables of
-- ../migrations/001_videogen.sql + 002_money_safety.sql, column for column and check for
-- check, in SQLite's types:
--   uuid -> text (canonical lower-case form), jsonb -> text holding JSON,
--   boolean -> integer 0/1, bigint/integer -> integer,
--   timestamptz -> text 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC, fixed width, so text order is
--   time order: the format of videogen_private.ts in ../functions.sql).
-- The functions are videogen_cli/storage/sandbox_functions.py (one Python twin per SQL
-- function); videogen_cli/storage/sqlite.py creates these tables in a new file and
-- rebuilds older files into them (SQLite cannot add a check to a table).
-- tests/backends/test_sandbox_twin.py compares the columns and checks with Postgres.
-- Statements end with a semicolon at the end of a line (the store splits on them).

create table models (
  id                 text primary key,
  slug               text not null unique check (slug <> ''),
  name               text not null default '',
  endpoint_id        text not null check (endpoint_id <> ''),
  credits_per_second integer not null check (credits_per_second > 0),
  requires_image     integer not null default 0 check (requires_image in (0, 1)),
  -- {"<setting>": {"type": ..., "allowed": [...]|null, "default": ...}}
  allowed_settings   text not null default '{}'
                     check (json_valid(allowed_settings)
                            and json_type(allowed_settings) = 'object'),
  active             integer not null default 1 check (active in (0, 1)),
  created_at         text not null,
  updated_at         text not null
);

-- One row per user who has ever been granted credits.
create table user_credits (
  user_id    text primary key,
  balance    integer not null default 0 check (balance >= 0),
  created_at text not null,
  updated_at text not null
);

create table video_jobs (
  job_id              text primary key,
  user_id             text not null references user_credits (user_id),
  model_id            text not null references models (id),
  model_slug          text not null,  -- the slug at creation time (the job JSON's "model")
  endpoint_id         text not null,
  prompt              text not null,
  image_url           text,
  settings            text not null default '{}',
  status              text not null default 'pending'
                      check (status in ('pending', 'processing', 'completed', 'failed')),
  credits_used        integer not null check (credits_used > 0),
  refunded_credits    integer not null default 0
                      check (refunded_credits between 0 and credits_used),
  provider_request_id text,
  status_url          text,
  response_url        text,
  cancel_url          text,
  queue_position      integer check (queue_position >= 0),
  video_url           text,
  thumbnail_url       text,
  error               text,
  idempotency_key     text unique,
  created_at          text not null,
  updated_at          text not null,
  submitted_at        text,
  provider            text,
  provider_origin     text,
  not_found_count     integer not null default 0 check (not_found_count >= 0),
  check ((provider is null) = (provider_origin is null))
);
create index video_jobs_user_created_idx on video_jobs (user_id, created_at desc);
create index video_jobs_created_idx on video_jobs (created_at desc);
create index video_jobs_unfinished_idx on video_jobs (created_at)
  where status in ('pending', 'processing');

-- Keys are global: one key, one job. The claim row is inserted before the job exists,
-- hence the deferred references.
create table idempotency_keys (
  key         text primary key check (length(key) between 1 and 255),
  user_id     text not null references user_credits (user_id)
              deferrable initially deferred,
  fingerprint text not null,
  job_id      text not null unique references video_jobs (job_id)
              deferrable initially deferred,
  request     text not null default '{}',
  created_at  text not null
);

create table credit_ledger (
  id              integer primary key autoincrement,  -- never reused, as an identity
  user_id         text not null references user_credits (user_id),
  job_id          text references video_jobs (job_id),
  delta           integer not null,
  kind            text not null check (kind in ('grant', 'charge', 'refund')),
  reason          text,
  operator        text,
  created_at      text not null,
  idempotency_key text,
  -- At most one charge and one refund per job (NULLs are distinct: any number of grants).
  constraint credit_ledger_job_kind_key unique (job_id, kind),
  constraint credit_ledger_job_presence check ((kind = 'grant') = (job_id is null)),
  constraint credit_ledger_delta_sign check (
    (kind = 'charge' and delta < 0) or (kind in ('grant', 'refund') and delta > 0)
  ),
  constraint credit_ledger_grant_key_check check (
    idempotency_key is null
    or (kind = 'grant' and length(idempotency_key) between 1 and 255)
  )
);
create index credit_ledger_user_idx on credit_ledger (user_id, id desc);
create unique index credit_ledger_grant_key_idx on credit_ledger (idempotency_key)
  where idempotency_key is not null;
