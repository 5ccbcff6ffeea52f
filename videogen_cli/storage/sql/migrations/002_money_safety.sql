-- videogen migration 002: money safety.
--
-- * Each job records the provider that took it (README "Each job stays with its
--   provider"): `fal` + the queue base URL, or `simulator` + its sandbox. NULL for jobs
--   recorded before this migration and for jobs never submitted.
-- * not_found_count: consecutive "not found" answers from that provider; the core fails
--   a job only after repeated ones (videogen_note_not_found counts, videogen_apply_status
--   resets).
-- * Grants may carry an idempotency key: the same key never grants twice. Grant keys are
--   their own namespace (a column of the grant's ledger row), apart from generate's keys.
-- * Indexes for `videogen reconcile` and public.videogen_sweep_stranded.

alter table public.video_jobs
  add column if not exists provider text,
  add column if not exists provider_origin text,
  add column if not exists not_found_count integer not null default 0;

alter table public.video_jobs
  add constraint video_jobs_not_found_count_check check (not_found_count >= 0),
  add constraint video_jobs_provider_check check ((provider is null) = (provider_origin is null));

alter table public.credit_ledger
  add column if not exists idempotency_key text;

alter table public.credit_ledger
  add constraint credit_ledger_grant_key_check check (
    idempotency_key is null
    or (kind = 'grant' and char_length(idempotency_key) between 1 and 255)
  );

create unique index if not exists credit_ledger_grant_key_idx
  on public.credit_ledger (idempotency_key) where idempotency_key is not null;

-- Jobs not yet terminal, oldest first (reconcile), and the never-submitted ones (sweeper).
create index if not exists video_jobs_unfinished_idx
  on public.video_jobs (created_at) where status in ('pending', 'processing');
