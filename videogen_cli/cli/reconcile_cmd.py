"""`reconcile`: sync every unfinished job with its provider, refund the stranded ones."""

from __future__ import annotations

from typing import Annotated

import typer

from videogen_cli.cli.common import JsonOpt, open_session
from videogen_cli.core.reconcile import DEFAULT_LIMIT
from videogen_cli.ports import DEFAULT_SUBMIT_GRACE_SECONDS


def reconcile(
    older_than: Annotated[
        float,
        typer.Option("--older-than", help="Only jobs created at least this many seconds ago."),
    ] = 0.0,
    limit: Annotated[int, typer.Option("--limit", help="At most this many jobs, oldest first.")] = (
        DEFAULT_LIMIT
    ),
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would happen; move nothing, call no provider."),
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Sweep every job that is not finished, so none waits for someone to run `status`.

    Jobs charged but never submitted (the submitting process stopped) and older than
    the grace period (VIDEOGEN_SUBMIT_GRACE_SECONDS, default {grace}) are failed and
    refunded. Every other job is synced with the provider that took it, exactly as
    `videogen status` does; a job of another provider is skipped and counted. Prints one
    summary (`--json`: one object). Safe to run from many processes and machines at
    once: each credit moves at most once.

    Examples:

      $ videogen reconcile --dry-run

      $ videogen reconcile --older-than 60 --limit 100 --json
    """
    with open_session(json_mode) as s:
        from videogen_cli.core.reconcile import JobAction, check_options

        check_options(older_than, limit)

        def progress(action: JobAction) -> None:
            detail = f" ({action.detail})" if action.detail else ""
            s.out.info(f"{action.job_id} {action.action.replace('_', ' ')}{detail}")

        s.out.emit(
            s.service.reconcile(
                older_than=older_than, limit=limit, dry_run=dry_run, on_job=progress
            )
        )


# The help quotes the default grace period: written from the constant, never by hand.
reconcile.__doc__ = (reconcile.__doc__ or "").replace(
    "{grace}", f"{DEFAULT_SUBMIT_GRACE_SECONDS:g}"
)
