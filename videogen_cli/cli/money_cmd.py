"""`refund` and `replay-key`: the two commands whose whole point is money moving once."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from videogen_cli.cli.common import JsonOpt, Session, open_session
from videogen_cli.core.refunds import RefundReport, check_refund_input, dry_run_report, plan_refund
from videogen_cli.core.refunds import refund as do_refund
from videogen_cli.errors import NotIdempotentError, UsageError


def refund(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="The job's UUID.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why the credits go back (kept in the ledger).")
    ],
    credits: Annotated[
        int | None, typer.Option("--credits", help="How many; default: all the job used.")
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Who refunds [env VIDEOGEN_OPERATOR; default: login]."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Give a finished job's credits back to its user: at most once per job, on record.

    A failed job was already refunded automatically, and a second refund of any job is
    a safe no-op (exit 0, `refunded_now: false`). Running jobs cannot be refunded
    (exit 4), nor more credits than the job used (exit 4). Without a terminal,
    `--yes` is required (exit 2 otherwise).

    Examples:

    ```
    $ videogen refund JOB_ID --reason "video was blank (ticket 4411)" --dry-run
    $ videogen refund JOB_ID --reason "duplicate order" --credits 4 \\
        --operator alice --yes
    ```
    """
    with open_session(json_mode) as s:
        who = operator or s.settings.operator or _login_name()
        reason, who = check_refund_input(reason, who, credits)
        plan = plan_refund(s.service, job_id, credits)
        if dry_run:
            _print_refund(s, dry_run_report(plan, reason, who))
            return
        if not plan.already_refunded and not yes:
            _confirm(
                s,
                f"Refund {plan.credits} credits to user {plan.job.user_id} "
                f"for job {plan.job.job_id}",
                reason,
                who,
            )
        _print_refund(s, do_refund(s.service, plan.job.job_id, credits, reason, who))


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _confirm(s: Session, action: str, reason: str, who: str) -> None:
    """Ask on a terminal; refuse (exit 2) where nobody can answer. Declining exits 0."""
    if not sys.stdin.isatty():
        raise UsageError(
            "this moves credits and needs confirmation, but there is no terminal to ask",
            code="confirmation_required",
            hint="pass --yes (or --dry-run to preview a refund)",
        )
    s.out.info(
        f"{action}\n  backend: {s.service.store.backend_name}; operator: {who}; reason: {reason}"
    )
    if not typer.confirm("Proceed?", default=False, err=True):
        s.out.info("declined; nothing changed")
        raise typer.Exit(0)


def grant(
    user: Annotated[str, typer.Option("--user", help="The user's UUID (created when new).")],
    credits: Annotated[int, typer.Option("--credits", help="How many credits to add.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")],
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Who grants [env VIDEOGEN_OPERATOR; default: login]."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Add credits to a user's account, creating it when new; on record in the ledger.

    Each call is a new grant: after a timeout, check `videogen credits --user …` before
    running it again. Without a terminal, `--yes` is required (exit 2 otherwise).

    Example:

    ```
    $ videogen grant --user USER_ID --credits 50 --reason "beta tester" \\
        --operator alice --yes
    ```
    """
    from videogen_cli.core.credits import check_grant_input
    from videogen_cli.core.credits import grant as do_grant

    with open_session(json_mode) as s:
        user_id, reason, who = check_grant_input(
            user, credits, reason, operator or s.settings.operator or _login_name()
        )
        if not yes:
            _confirm(s, f"Grant {credits} credits to user {user_id}", reason, who)
        report = do_grant(s.service, user_id, credits, reason, who)
        if s.out.json_mode:
            s.out.json(report.to_json())
        else:
            s.out.fields(report.to_json())


def _print_refund(s: Session, report: RefundReport) -> None:
    if s.out.json_mode:
        s.out.json(report.to_json())
        return
    if report.dry_run:
        s.out.info("dry run: nothing was changed")
    elif not report.refunded_now:
        s.out.info("already refunded: nothing moved this time")
    s.out.fields(report.to_json())


def replay_key(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="An idempotency key printed by `generate`.")
    ],
    show: Annotated[
        bool, typer.Option("--show", help="Print the stored record; send nothing.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Send a stored request again with its key and check nothing is charged twice.

    The verdict is `idempotent` when the answer is the same job, marked replayed, and
    the user's balance did not move (exit 0); anything else is `violated` (exit 1).

    Examples:

    ```
    $ videogen replay-key order-1234
    $ videogen replay-key order-1234 --show --json
    ```
    """
    from videogen_cli.core.replay import load_record, replay_key

    with open_session(json_mode) as s:
        if show:
            record = load_record(s.service, key).to_json()
            if s.out.json_mode:
                s.out.json(record)
            else:
                s.out.fields(record)
            return
        verdict = replay_key(s.service, key)
        data = verdict.to_json()
        if s.out.json_mode:
            s.out.json(data)
        else:
            s.out.fields(data)
        if not verdict.idempotent:
            error = NotIdempotentError(
                f"key {verdict.key} is not idempotent: expected job {verdict.original_job_id} "
                f"replayed with an unchanged balance",
                hint="a retried request would have charged or created again: check the store",
            )
            s.out.exit_after_result(error)
