"""Operator conveniences: the model catalog, jobs, a user's credits, the configuration."""

from __future__ import annotations

from typing import Annotated

import typer

from videogen_cli.cli.common import JsonOpt, open_session, resolve_user
from videogen_cli.cli.output import Output, command_boundary


def models(json_mode: JsonOpt = False) -> None:
    """List the models, their price and the settings each accepts.

    Example:

      $ videogen models
    """
    with open_session(json_mode) as s:
        rows = s.service.store.list_models()
        if s.out.json_mode:
            s.out.json(
                {
                    "models": [
                        {
                            "slug": m.slug,
                            "id": m.id,
                            "endpoint_id": m.endpoint_id,
                            "credits_per_second": m.credits_per_second,
                            "requires_image": m.requires_image,
                            "active": m.active,
                            "settings": {
                                k: {"allowed": list(v.allowed or ()), "default": v.default}
                                for k, v in m.settings.items()
                            },
                        }
                        for m in rows
                    ]
                }
            )
            return
        for m in rows:
            kind = "image-to-video" if m.requires_image else "text-to-video"
            state = "" if m.active else " (inactive)"
            s.out.result(
                f"{m.slug:<12} {m.endpoint_id:<30} {m.credits_per_second} credit/s  {kind}{state}"
            )
            for name, spec in m.settings.items():
                allowed = ", ".join(str(a) for a in spec.allowed or ())
                s.out.result(
                    f"{'':<13}--{name.replace('_', '-')}: {allowed} (default {spec.default})"
                )


def jobs(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's jobs.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many.")] = 20,
    json_mode: JsonOpt = False,
) -> None:
    """List recent jobs, newest first.

    Example:

      $ videogen jobs --limit 5
    """
    with open_session(json_mode) as s:
        rows = s.service.store.list_jobs(user, limit)
        if s.out.json_mode:
            s.out.json({"jobs": [j.to_json() for j in rows]})
            return
        for j in rows:
            s.out.result(
                f"{j.job_id}  {j.status.value:<10} {j.model:<11} {j.credits_used:>4} cr  "
                f"{j.created_at:%Y-%m-%d %H:%M}  {j.prompt[:40]}"
            )


def credits(
    user: Annotated[
        str | None, typer.Option("--user", help="User UUID [env VIDEOGEN_USER_ID].")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Ledger rows.")] = 20,
    json_mode: JsonOpt = False,
) -> None:
    """Show a user's balance and latest ledger rows (who moved what, and why).

    Example:

      $ videogen credits --user 2c6f…
    """
    from videogen_cli.core.requests import check_uuid
    from videogen_cli.errors import NotFoundError

    with open_session(json_mode) as s:
        user_id = check_uuid(resolve_user(s, user), "user id")
        balance = s.service.store.get_balance(user_id)
        if balance is None:
            raise NotFoundError(f"user {user_id} not found", code="user_not_found")
        ledger = s.service.store.list_ledger(user_id, limit)
        if s.out.json_mode:
            s.out.json(
                {"user_id": user_id, "balance": balance, "ledger": [e.to_json() for e in ledger]}
            )
            return
        s.out.result(f"user {user_id}: {balance} credits")
        for e in ledger:
            s.out.result(
                f"  {e.created_at:%Y-%m-%d %H:%M:%S}  {e.kind.value:<6} {e.delta:>+6}  "
                f"job {e.job_id or '-'}  by {e.operator or '-'}: {e.reason or ''}"
            )


def config(json_mode: JsonOpt = False) -> None:
    """Show which backend and provider the environment selects (secrets masked).

    Example:

      $ videogen config
    """
    from videogen_cli.config import load_settings

    out = Output(json_mode=json_mode)
    with command_boundary(out):
        described = load_settings().describe()
        if json_mode:
            out.json(described)
        else:
            out.fields(described)
