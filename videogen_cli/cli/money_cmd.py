"""`refund`, `grant` and `replay-key`: the commands whose whole point is money moving once."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from videogen_cli.cli.common import JsonOpt, Session, open_session, resolve_user
from videogen_cli.core.refunds import check_refund_input
from videogen_cli.core.requests import check_uuid
from videogen_cli.errors import InterruptedError_, NotIdempotentError, UsageError


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

    A failed job was already refunded automatically, and repeating a refund of a job
    refunded in full is a safe no-op (exit 0, `refunded_now: false`). A second refund
    after a partial one is refused (exit 4), as are running jobs and more credits than
    the job used. `--dry-run` asks the database the same question and changes nothing
    (`refunded_now` says whether the refund would move credits). The prompt names the
    database, the user and the balance before and after; without a terminal, `--yes`
    is required (exit 2 otherwise).

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
        job_id = check_uuid(job_id, "job id")
        if dry_run or not yes:
            # The store's own dry run: the same checks as the refund, nothing written.
            preview = s.service.refund(job_id, credits, reason, who, dry_run=True)
            if dry_run:
                s.out.emit(preview)
                return
            if preview.refunded_now:
                _confirm(
                    s,
                    f"Refund {preview.moving} credits for job {job_id}",
                    user_id=preview.user_id,
                    balances=(preview.balance_before, preview.balance),
                    reason=reason,
                    who=who,
                )
        s.out.emit(s.service.refund(job_id, credits, reason, who))


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _confirm(
    s: Session,
    action: str,
    *,
    user_id: str,
    balances: tuple[int, int],
    reason: str,
    who: str,
    note: str | None = None,
) -> None:
    """Ask on a terminal what is about to move, where, for whom; refuse without one.

    Exit 2 where nobody can answer; declining exits 0; Ctrl-C or Ctrl-D at the prompt
    exits 130. Either way nothing has changed. The target names the database (never a
    password or key) so an operator sees at once when a shell points at production.
    """
    if not _stdin_is_tty():
        raise UsageError(
            "this moves credits and needs confirmation, but there is no terminal to ask",
            code="confirmation_required",
            hint="pass --yes (or --dry-run to preview a refund)",
        )
    before, after = balances
    lines = [
        action,
        f"  target:   {s.settings.target()}",
        f"  user:     {user_id}",
        f"  balance:  {before} -> {after}",
        f"  operator: {who}",
        f"  reason:   {reason}",
    ]
    if note:
        lines.append(f"  note:     {note}")
    # The question goes to stderr in JSON mode too: it is asked, not reported.
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    try:
        agreed = _ask("Proceed?")
    except (typer.Abort, KeyboardInterrupt, EOFError):
        sys.stderr.write("\n")
        raise InterruptedError_(
            "cancelled; nothing changed", code="cancelled", hint="run it again to retry"
        ) from None
    if not agreed:
        s.out.info("declined; nothing changed")
        raise typer.Exit(0)


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _ask(question: str) -> bool:
    """The one prompt (a seam for tests); raises typer.Abort on Ctrl-C or Ctrl-D."""
    return bool(typer.confirm(question, default=False, err=True))


def grant(
    credits: Annotated[int, typer.Option("--credits", help="How many credits to add.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")],
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="User UUID, created when new [env VIDEOGEN_USER_ID; sandbox: the demo user].",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Grant at most once per key: a repeat moves nothing (granted_now: false).",
        ),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Who grants [env VIDEOGEN_OPERATOR; default: login]."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Add credits to a user's account, creating it when new; on record in the ledger.

    Without `--idempotency-key` each call is a new grant. With one, the first call
    grants and every later call with the same key moves nothing (exit 0,
    `granted_now: false`), so a CI job can fund a user on every run. Without a
    terminal, `--yes` is required (exit 2 otherwise).

    Examples:

    ```
    $ videogen grant --user USER_ID --credits 50 --reason "beta tester" \\
        --operator alice --yes

    $ videogen grant --user USER_ID --credits 100 --reason "CI funding" \\
        --idempotency-key ci-fund-1 --yes --json
    ```
    """
    from videogen_cli.core.credits import check_grant_input

    with open_session(json_mode) as s:
        request = check_grant_input(
            resolve_user(s, user),
            credits,
            reason,
            operator or s.settings.operator or _login_name(),
            idempotency_key,
        )
        if not yes:
            before = s.service.get_balance(request.user_id)
            _confirm(
                s,
                f"Grant {request.credits} credits" + (" (a new account)" if before is None else ""),
                user_id=request.user_id,
                balances=(before or 0, (before or 0) + request.credits),
                reason=request.reason,
                who=request.operator,
                note=None
                if request.idempotency_key is None
                else f"idempotency key {request.idempotency_key}: if it granted before, "
                "nothing moves",
            )
        s.out.emit(s.service.grant(request))


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

    with open_session(json_mode) as s:
        if show:
            s.out.emit(s.service.idempotency_record(key))
            return
        verdict = s.service.replay(key)
        s.out.emit(verdict)
        if not verdict.idempotent:
            error = NotIdempotentError(
                f"key {verdict.key} is not idempotent: expected job {verdict.original_job_id} "
                f"replayed with an unchanged balance",
                hint="a retried request would have charged or created again: check the store",
            )
            s.out.exit_after_result(error)
