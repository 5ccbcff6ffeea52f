"""Every command's human output, in one place: one renderer per kind of result.

Commands never choose between JSON and text themselves: they call `Output.emit(result)`,
which prints `result.to_json()` in `--json` mode and calls `render(result, out)` here
otherwise. Results go to stdout (`out.fields`, `out.table`, `out.result`), notices about
them to stderr (`out.info`). Lists are tables with a header, and say so when empty.

Imported only when a command prints its result: never at `videogen --help`.
"""

from __future__ import annotations

import sys
from functools import singledispatch

from videogen_cli.cli.output import Column, Output
from videogen_cli.cli.records import (
    ConfigReport,
    IssuedToken,
    Migrated,
    MigrationSql,
    SandboxReset,
)
from videogen_cli.core.credits import GrantReport
from videogen_cli.core.jobs import GenerateOutcome, RefreshOutcome
from videogen_cli.core.reconcile import ReconcileSummary
from videogen_cli.core.refunds import RefundReport
from videogen_cli.core.replay import ReplayVerdict
from videogen_cli.core.reports import CreditsReport, JobList, ModelCatalog
from videogen_cli.core.smoke.results import CheckStatus, SmokeReport
from videogen_cli.domain import IdempotencyRecord


@singledispatch
def render(result: object, out: Output) -> None:
    """Draw ``result`` for people; every kind of result registers its renderer below."""
    raise TypeError(f"no human rendering for {type(result).__name__}")


# --- one job -------------------------------------------------------------------------------


@render.register
def _generate(result: GenerateOutcome, out: Output) -> None:
    if result.replayed:
        out.info("replayed: this key was used before; nothing was charged or submitted")
    out.fields(result.to_json())


@render.register
def _status(result: RefreshOutcome, out: Output) -> None:
    if not result.synced:
        out.info(f"notice: {result.not_synced_reason}")
    if result.transient_error:
        out.info(
            f"warning: no usable answer from the provider ({result.transient_error}); "
            "shown as stored"
        )
    data = result.job.to_json()
    if not result.synced:
        # The reason was said on stderr just above; stdout only marks the job unsynced.
        data["synced"] = False
    out.fields(data)


# --- money ---------------------------------------------------------------------------------


@render.register
def _refund(result: RefundReport, out: Output) -> None:
    if result.dry_run and result.refunded_now:
        out.info(
            f"dry run: would refund {result.moving} credits "
            f"(balance {result.balance_before} -> {result.balance}); nothing was changed"
        )
    elif result.dry_run:
        out.info(
            f"dry run: already refunded ({result.refunded_credits} credits); "
            "nothing would move and nothing was changed"
        )
    elif not result.refunded_now:
        out.info("already refunded: nothing moved this time")
    out.fields(result.to_json())


@render.register
def _grant(result: GrantReport, out: Output) -> None:
    if not result.granted_now:
        out.info(f"key {result.idempotency_key} granted before: nothing moved this time")
    out.fields(result.to_json())


@render.register
def _idempotency_record(result: IdempotencyRecord, out: Output) -> None:
    out.fields(result.to_json())


@render.register
def _replay_verdict(result: ReplayVerdict, out: Output) -> None:
    out.fields(result.to_json())


@render.register
def _reconcile(result: ReconcileSummary, out: Output) -> None:
    if result.dry_run:
        out.info("dry run: nothing was moved and no provider was asked")
    # Each job was named on stderr as it was done; stdout has the totals.
    out.fields({name: value for name, value in result.to_json().items() if name != "jobs"})


# --- lists ---------------------------------------------------------------------------------

MODEL_COLUMNS = [
    Column("MODEL"),
    Column("ENDPOINT"),
    Column("CREDITS/S", justify="right"),
    Column("INPUT"),
    Column("SETTINGS", wrap=True),
]
JOB_COLUMNS = [
    Column("JOB_ID"),
    Column("STATUS"),
    Column("MODEL"),
    Column("CREDITS", justify="right"),
    Column("CREATED (UTC)"),
    Column("PROMPT", ellipsis=True),
]
LEDGER_COLUMNS = [
    Column("WHEN (UTC)"),
    Column("KIND"),
    Column("DELTA", justify="right"),
    Column("JOB"),
    Column("BY"),
    Column("REASON", wrap=True),
]


@render.register
def _models(result: ModelCatalog, out: Output) -> None:
    if not result.models:
        out.result("no models")
        return
    rows: list[list[object]] = []
    for model in result.models:
        kind = "image-to-video" if model.requires_image else "text-to-video"
        settings = tuple(
            f"--{name.replace('_', '-')}: {', '.join(str(a) for a in spec.allowed or ())} "
            f"(default {spec.default})"
            for name, spec in model.settings.items()
        )
        rows.append(
            [
                model.slug,
                model.endpoint_id,
                model.credits_per_second,
                kind if model.active else f"{kind} (inactive)",
                settings,
            ]
        )
    out.table(MODEL_COLUMNS, rows)


@render.register
def _jobs(result: JobList, out: Output) -> None:
    if not result.jobs:
        out.result("no jobs" + (f" for user {result.user_id}" if result.user_id else ""))
        return
    cut = out.table(
        JOB_COLUMNS,
        [
            [
                job.job_id,
                job.status.value,
                job.model,
                job.credits_used,
                f"{job.created_at:%Y-%m-%d %H:%M}",
                job.prompt,
            ]
            for job in result.jobs
        ],
    )
    if cut:
        out.info("note: long prompts are cut with …; `--json` has them whole")
    out.info(
        "note: statuses as stored (may be stale); `videogen status JOB_ID` asks fal and updates one"
    )


@render.register
def _credits(result: CreditsReport, out: Output) -> None:
    out.result(f"user {result.user_id}: {result.balance} credits")
    if not result.ledger:
        out.result("no ledger rows")
        return
    out.table(
        LEDGER_COLUMNS,
        [
            [
                f"{entry.created_at:%Y-%m-%d %H:%M:%S}",
                entry.kind.value,
                f"{entry.delta:+d}",
                entry.job_id,
                entry.operator,
                entry.reason,
            ]
            for entry in result.ledger
        ],
    )


# --- configuration and tokens ----------------------------------------------------------------


@render.register
def _config(result: ConfigReport, out: Output) -> None:
    out.fields(result.settings)
    for warning in result.warnings:
        out.info(f"warning: {warning.message}\nhint: {warning.hint}")
    for problem in result.problems:
        out.error(problem)


@render.register
def _token(result: IssuedToken, out: Output) -> None:
    out.info(f"note: token for user {result.user_id}, valid {result.ttl} s")
    out.result(result.token)


# --- the sandbox file and the Postgres schema ------------------------------------------------


@render.register
def _sandbox_reset(result: SandboxReset, out: Output) -> None:
    out.result(
        f"reset {result.database}: demo user {result.demo_user} has {result.balance} credits"
    )


@render.register
def _migration_sql(result: MigrationSql, out: Output) -> None:
    # The SQL as it is (tabs and all), for a file: not through safe_lines.
    sys.stdout.write(result.sql)


@render.register
def _migrated(result: Migrated, out: Output) -> None:
    out.result(f"migrated {result.database_url}")


# --- smoke ---------------------------------------------------------------------------------

SMOKE_STYLES = {
    "passed": "green",
    "failed": "red",
    "skipped": "yellow",
    "running": "cyan",
    "waiting": "dim",
}


@render.register
def _smoke(result: SmokeReport, out: Output) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    for check in result.checks:
        style = SMOKE_STYLES[check.status.value]
        table.add_row(check.name, f"[{style}]{check.status.value}[/]", f"{check.seconds:.1f}")
    console.print(table)
    # Messages as plain lines: rich would wrap them, and CI logs are grepped.
    for check in result.checks:
        if check.status is not CheckStatus.PASSED:
            sys.stdout.write(f"{check.name} {check.status.value}: {check.message}\n")
    counts = {s.value: result.count(s) for s in CheckStatus}
    verdict = "passed" if result.passed else "FAILED"
    sys.stdout.write(
        f"smoke {verdict}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped against {result.target}\n"
    )
    sys.stdout.flush()
