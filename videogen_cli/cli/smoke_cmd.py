"""`smoke`: the backend plan's test list as named checks, for people and CI systems."""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from videogen_cli.cli.common import JsonOpt
from videogen_cli.cli.output import Output, command_boundary
from videogen_cli.core.smoke import (
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_MAX_INTERVAL,
)
from videogen_cli.errors import BackendError, UsageError

if TYPE_CHECKING:
    from videogen_cli.core.jobs import JobService
    from videogen_cli.core.smoke.checks import SmokePlan
    from videogen_cli.core.smoke.results import CheckResult, SmokeReport
    from videogen_cli.core.smoke.targets import Target

_RUN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def smoke(
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            envvar="VIDEOGEN_SMOKE_ENDPOINT",
            help="Check this implementation of the app's endpoints over HTTP (base URL).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="VIDEOGEN_SMOKE_TOKEN",
            show_default=False,
            help="A user JWT for --endpoint (prefer the env var: flags show in `ps`).",
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", dir_okay=False, help="Also write a JUnit XML report here."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Agree to spend real money on real fal.")
    ] = False,
    check_timeout: Annotated[
        float,
        typer.Option(
            "--check-timeout",
            envvar="VIDEOGEN_SMOKE_CHECK_TIMEOUT",
            help="Deadline of each check, seconds (a job that never ends fails its check).",
        ),
    ] = DEFAULT_CHECK_TIMEOUT,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Names the run's throwaway users; a rerun with one id never funds twice "
            "[default: new].",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model to use [default: the cheapest text model]."),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", help="First wait between polls, s.")
    ] = DEFAULT_POLL_INTERVAL,
    max_interval: Annotated[
        float, typer.Option("--max-interval", help="Longest wait between polls, s.")
    ] = DEFAULT_POLL_MAX_INTERVAL,
    json_mode: JsonOpt = False,
) -> None:
    """Run the backend plan's checks: create, replay, key reuse, no credits, completion,
    failure refund, refund once and the ledger invariant.

    Directly, through the configured backend (it funds a throwaway user of its own with
    an idempotent grant and touches no other user), or with `--endpoint` and `--token`
    over HTTP against any implementation of the app's endpoints (`videogen serve`, the
    deployed Edge Functions). Exit 0 when every check passed (skips allowed), 1 when any
    failed, 5 when the target cannot be reached. On real fal it says what it will spend
    and needs `--yes`.

    Examples:

      $ videogen smoke --junit reports/smoke.xml

      $ export VIDEOGEN_SMOKE_TOKEN=$(videogen token)

      $ videogen smoke --endpoint http://127.0.0.1:54321 --junit smoke.xml
    """
    out = Output(json_mode=json_mode)
    with command_boundary(out):
        from videogen_cli.core.smoke.checks import SmokeOptions, SmokeSession
        from videogen_cli.core.smoke.targets import TargetUnreachable
        from videogen_cli.core.watching import Backoff

        if (endpoint is None) != (token is None):
            raise UsageError(
                "--endpoint and --token go together",
                hint="pass both (or VIDEOGEN_SMOKE_ENDPOINT and VIDEOGEN_SMOKE_TOKEN), or "
                "neither to check the configured backend directly",
            )
        if not check_timeout > 0:
            raise UsageError("--check-timeout must be greater than 0")
        backoff = Backoff(interval, max_interval, 2.0, True)
        backoff.validate()
        run = run_id.strip() if run_id is not None else uuid.uuid4().hex
        if not _RUN_ID.match(run):
            raise UsageError(
                f"--run-id {run_id!r} must be 1-64 letters, digits or . _ : -",
                hint="e.g. --run-id $GITHUB_RUN_ID",
            )
        options = SmokeOptions(run, check_timeout, backoff, model)
        if junit is not None:
            _check_writable(junit)  # a bad path fails now, not after the jobs were paid for
        try:
            target = _build_target(out, endpoint, token, run)
        except BackendError as exc:  # the configured backend cannot even be opened
            if junit is not None:
                where = "http" if endpoint else "direct"
                _write_junit(_unreachable_report(where, endpoint or "", {}, run, exc), junit)
            raise
        try:
            try:
                target.probe()
            except TargetUnreachable as exc:
                if junit is not None:
                    report = _unreachable_report(
                        target.mode, target.description, target.environment, run, exc
                    )
                    _write_junit(report, junit)
                raise
            session = SmokeSession(target, options)
            plan = session.plan()
            out.info(f"smoke run {run} against {target.description}, user {session.user.user_id}")
            if target.paid:
                _confirm_spend(out, target, plan, yes)
            session.fund()
            with _reporter(out) as reporter:
                report = session.run(reporter)
        finally:
            target.close()
        if junit is not None:
            _write_junit(report, junit)
        out.emit(report)
        if report.unreachable is not None:
            # The report above is the answer; in JSON mode no second object follows it.
            out.exit_after_result(
                TargetUnreachable(
                    f"the target stopped answering during the run: {report.unreachable}"
                )
            )
        if not report.passed:
            raise typer.Exit(1)


def _build_target(out: Output, endpoint: str | None, token: str | None, run_id: str) -> Target:
    from videogen_cli.bootstrap import build_service
    from videogen_cli.config import load_settings

    if endpoint is not None and token is not None:
        from videogen_cli.bootstrap import open_endpoint_client
        from videogen_cli.core.smoke.http import HttpTarget
        from videogen_cli.http.tokens import mint

        return HttpTarget(
            endpoint,
            token,
            open_client=open_endpoint_client,
            mint=mint,
            books=_books_for_http,
            jwt_secret=_jwt_secret(),
            apikey=os.environ.get("SUPABASE_ANON_KEY", "").strip() or None,
        )
    from videogen_cli.core.smoke.checks import smoke_user_ids
    from videogen_cli.core.smoke.targets import DirectTarget

    settings = load_settings()
    service = build_service(settings)
    out.note_environment(service.backend_name, settings.provider, str(settings.sandbox_db))
    return DirectTarget(
        service,
        provider=settings.provider,
        where=_describe_backend(settings),
        user_id=smoke_user_ids(run_id)[0],
    )


def _books_for_http() -> JobService | None:
    """The configured backend, to read balances the endpoints do not show, if it exists.

    A sandbox that was never created cannot be the endpoint's: do not create one.
    """
    from videogen_cli.bootstrap import build_service
    from videogen_cli.config import load_settings

    settings = load_settings()
    if settings.backend == "sandbox" and not settings.sandbox_db.exists():
        return None
    return build_service(settings)


def _jwt_secret() -> str | None:
    """The secret that signs user tokens, if known here: SUPABASE_JWT_SECRET, or the
    configured sandbox's own (the one `videogen token` and `videogen serve` use there)."""
    from videogen_cli.config import load_settings
    from videogen_cli.errors import ConfigError
    from videogen_cli.http.tokens import SANDBOX_SECRET_FILE, SECRET_ENV

    secret = os.environ.get(SECRET_ENV, "").strip()
    if secret:
        return secret
    try:
        settings = load_settings()
    except ConfigError:
        return None
    path = settings.home / SANDBOX_SECRET_FILE
    if settings.backend != "sandbox" or not path.is_file():
        return None  # never create one: a new secret cannot be the endpoint's
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _describe_backend(settings: Any) -> str:
    described = settings.describe()
    if settings.backend == "sandbox":
        return f"sandbox {settings.sandbox_db}"
    if settings.backend == "supabase":
        return f"supabase {described['supabase_url']}"
    return f"postgres {described['database_url']}"


def _confirm_spend(out: Output, target: Target, plan: SmokePlan, yes: bool) -> None:
    """Real fal bills every job: say what this run costs, and go on only when agreed."""
    message = f"smoke on real fal ({target.description}) will spend {plan.describe()}"
    if yes:
        out.info(message)
        return
    if not sys.stdin.isatty() or out.json_mode:
        raise UsageError(
            f"{message}; this needs confirmation, but there is no terminal to ask",
            code="confirmation_required",
            hint="pass --yes to spend it",
        )
    out.info(message)
    if not typer.confirm("Proceed?", default=False, err=True):
        out.info("declined; nothing spent")
        raise typer.Exit(0)


def _unreachable_report(
    mode: str, where: str, environment: dict[str, Any], run_id: str, exc: BackendError
) -> SmokeReport:
    """Every check failed as not run, so a CI dashboard still shows each name and why."""
    from videogen_cli.core.smoke.results import CHECK_NAMES, CheckResult, CheckStatus, SmokeReport

    message = exc.message
    report = SmokeReport(mode, where, environment, run_id)
    report.unreachable = message
    for name in CHECK_NAMES:
        report.checks.append(
            CheckResult(name, CheckStatus.FAILED, 0.0, f"not run: target unreachable: {message}")
        )
    return report


def _check_writable(path: Path) -> None:
    """Fail early on a report path that cannot be written, leaving no empty file behind
    (an empty report breaks the CI step that publishes it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with path.open("ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write the JUnit report to {path}: {exc.strerror or exc}",
            hint="pass --junit a writable file path",
        ) from None


def _write_junit(report: SmokeReport, path: Path) -> None:
    from videogen_cli.core.smoke.junit import write_junit

    try:
        write_junit(report, path)
    except OSError as exc:
        raise UsageError(
            f"cannot write the JUnit report to {path}: {exc.strerror or exc}",
            hint="pass --junit a writable file path",
        ) from None


def _reporter(out: Output) -> Any:
    if out.json_mode:
        return _Quiet()
    if out.stderr_is_tty():
        return _LiveView()
    return _Lines(out)


class _Quiet:
    def started(self, name: str) -> None:
        pass

    def progress(self, name: str, state: str) -> None:
        pass

    def finished(self, result: CheckResult) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Lines:
    """No terminal (CI logs): one stderr line per check started, per change of what it
    waits for (so a long wait is never mistaken for a hang), and per check finished."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.started_at = time.monotonic()
        self.last_state: dict[str, str] = {}

    def _line(self, text: str) -> None:
        self.out.info(f"[{time.monotonic() - self.started_at:6.1f}s] {text}")

    def started(self, name: str) -> None:
        self._line(f"{name}: running")

    def progress(self, name: str, state: str) -> None:
        if self.last_state.get(name) != state:
            self.last_state[name] = state
            self._line(f"{name}: {state}")

    def finished(self, result: CheckResult) -> None:
        self._line(f"{result.name}: {result.status.value} ({result.seconds:.1f}s)")

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _LiveView:
    """A terminal: every check with its state and elapsed time, redrawn on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        from videogen_cli.core.smoke.results import CHECK_NAMES

        self.rows: dict[str, tuple[str, str]] = dict.fromkeys(CHECK_NAMES, ("waiting", ""))
        self.started_at: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.console = Console(stderr=True)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4)
        self.live.get_renderable = self._render  # type: ignore[method-assign]

    def _render(self) -> Any:
        from rich.table import Table

        from videogen_cli.cli.render import SMOKE_STYLES

        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("check", "state", "elapsed"):
            table.add_column(column, overflow="fold")
        now = time.monotonic()
        for name, (state, detail) in self.rows.items():
            elapsed = self.seconds.get(name, now - self.started_at.get(name, now))
            style = SMOKE_STYLES.get(state, "")
            cell = f"[{style}]{state}[/]" if style else state
            if detail:
                cell += f" [dim]{detail}[/]"
            table.add_row(name, cell, f"{elapsed:.1f}s")
        return table

    def started(self, name: str) -> None:
        self.started_at[name] = time.monotonic()
        self.rows[name] = ("running", "")

    def progress(self, name: str, state: str) -> None:
        self.rows[name] = ("running", state)

    def finished(self, result: CheckResult) -> None:
        self.seconds[result.name] = result.seconds
        self.rows[result.name] = (result.status.value, "")

    def __enter__(self) -> _LiveView:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)
