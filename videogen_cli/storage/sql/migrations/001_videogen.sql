-- videogen migration 001: the tables and the seed model catalog.
--
-- A schema change is a new numbered file in this folder, applied once and recorded in
-- videogen_private.schema_migrations (see videogen_cli/storage/migrate.py); the
-- functions, grants and policies live in ../functions.sql, re-created on every migrate.
-- Never edit a migration that has shipped: `videogen db migrate` refuses a database
-- whose recorded checksum differs from the file.
--
-- A database migrated before migrations were recorded (one 001_videogen.sql file
-- holding everything) already has these tables: migrate records 001 as applied.

-- ---------------------------------------------------------------------------------------
-- Tables (README "Money rules")
-- ---------------------------------------------------------------------------------------
create table if not exists public.models (
  id                 uuid primary key default gen_random_uuid(),
  slug               text not null unique check (slug <> ''),
  name               text not null default '',
  endpoint_id        text not null check (endpoint_id <> ''),
  credits_per_second integer not null check (credits_per_second > 0),
  requires_image     boolean not null default false,
  -- {"<setting>": {"type": "integer"|"string"|"boolean", "allowed": [...]|null,
  --  "default": ...}}, the shape of videogen_cli.catalog.settings_to_json.
  allowed_settings   jsonb not null default '{}'::jsonb
                     check (jsonb_typeof(allowed_settings) = 'object'),
  active             boolean not null default true,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now()
);

-- One row per user who has ever been granted credits: "the user exists" means this row
-- exists. (On Supabase user_id is auth.users.id; no foreign key, so that the same SQL
-- runs on a plain Postgres.)
create table if not exists public.user_credits (
  user_id    uuid primary key,
  balance    bigint not null default 0 check (balance >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists public.video_jobs (
  job_id              uuid primary key default gen_random_uuid(),
  user_id             uuid not null references public.user_credits (user_id),
  model_id            uuid not null references public.models (id),
  model_slug          text not null,  -- the slug at creation time (the job JSON's "model")
  endpoint_id         text not null,
  prompt              text not null,
  image_url           text,
  settings            jsonb not null default '{}'::jsonb,
  status              text not null default 'pending'
                      check (status in ('pending', 'processing', 'completed', 'failed')),
  credits_used        bigint not null check (credits_used > 0),
  refunded_credits    bigint not null default 0
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
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  submitted_at        timestamptz
);
create index if not exists video_jobs_user_created_idx
  on public.video_jobs (user_id, created_at desc);
create index if not exists video_jobs_created_idx on public.video_jobs (created_at desc);

-- Keys are global: one key, one job. The claim row is inserted before the job exists
-- (it is what serialises concurrent calls with one key), hence the deferred references.
create table if not exists public.idempotency_keys (
  key         text primary key check (char_length(key) between 1 and 255),
  user_id     uuid not null references public.user_credits (user_id)
              deferrable initially deferred,
  fingerprint text not null,
  job_id      uuid not null unique references public.video_jobs (job_id)
              deferrable initially deferred,
  request     jsonb not null default '{}'::jsonb,
  created_at  timestamptz not null default now()
);

create table if not exists public.credit_ledger (
  id         bigint generated always as identity primary key,
  user_id    uuid not null references public.user_credits (user_id),
  job_id     uuid references public.video_jobs (job_id),
  delta      bigint not null,
  kind       text not null check (kind in ('grant', 'charge', 'refund')),
  reason     text,
  operator   text,
  created_at timestamptz not null default now(),
  -- At most one charge and one refund per job: the backstop under every money function.
  -- (Grants have no job; NULLs are distinct, so any number of grants per user.)
  constraint credit_ledger_job_kind_key unique (job_id, kind),
  constraint credit_ledger_job_presence check ((kind = 'grant') = (job_id is null)),
  constraint credit_ledger_delta_sign check (
    (kind = 'charge' and delta < 0) or (kind in ('grant', 'refund') and delta > 0)
  )
);
create index if not exists credit_ledger_user_idx on public.credit_ledger (user_id, id desc);

-- ---------------------------------------------------------------------------------------
-- Seed catalog: the same rows as videogen_cli/catalog.py SEED_MODELS (a test compares
-- them). `active` is the operators' switch; later catalog changes are new migrations.
-- ---------------------------------------------------------------------------------------
insert into public.models
  (id, slug, name, endpoint_id, credits_per_second, requires_image, allowed_settings)
values
  ('6f1c2a10-0000-4000-a000-000000000001', 'sora-2-i2v', 'Sora 2 image-to-video',
   'fal-ai/sora-2/image-to-video', 1, true,
   '{"duration":     {"type": "integer", "allowed": [4, 8, 12], "default": 4},
     "resolution":   {"type": "string", "allowed": ["auto", "720p"], "default": "auto"},
     "aspect_ratio": {"type": "string", "allowed": ["auto", "9:16", "16:9"], "default": "auto"}}'),
  ('6f1c2a10-0000-4000-a000-000000000002', 'sora-2-t2v', 'Sora 2 text-to-video',
   'fal-ai/sora-2/text-to-video', 1, false,
   '{"duration":     {"type": "integer", "allowed": [4, 8, 12], "default": 4},
     "resolution":   {"type": "string", "allowed": ["720p"], "default": "720p"},
     "aspect_ratio": {"type": "string", "allowed": ["9:16", "16:9"], "default": "16:9"}}'),
  ('6f1c2a10-0000-4000-a000-000000000003', 'veo3.1', 'Veo 3.1 text-to-video',
   'fal-ai/veo3.1', 4, false,
   '{"duration":     {"type": "string", "allowed": ["4s", "6s", "8s"], "default": "8s"},
     "resolution":   {"type": "string", "allowed": ["720p", "1080p", "4k"], "default": "720p"},
     "aspect_ratio": {"type": "string", "allowed": ["16:9", "9:16"], "default": "16:9"}}'),
  ('6f1c2a10-0000-4000-a000-000000000004', 'veo3.1-i2v', 'Veo 3.1 image-to-video',
   'fal-ai/veo3.1/image-to-video', 4, true,
   '{"duration":     {"type": "string", "allowed": ["4s", "6s", "8s"], "default": "8s"},
     "resolution":   {"type": "string", "allowed": ["720p", "1080p", "4k"], "default": "720p"},
     "aspect_ratio": {"type": "string", "allowed": ["auto", "16:9", "9:16"], "default": "auto"}}')
on conflict (id) do update set
  slug = excluded.slug,
  name = excluded.name,
  endpoint_id = excluded.endpoint_id,
  credits_per_second = excluded.credits_per_second,
  requires_image = excluded.requires_image,
  allowed_settings = excluded.allowed_settings,
  updated_at = now();
