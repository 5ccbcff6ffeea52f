"""`generate`, `status` and `watch`: create a job once, then follow it to the end."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from videogen_cli.cli.common import JsonOpt, Session, open_session, resolve_user
from videogen_cli.cli.options import DEFAULT_MODEL
from videogen_cli.core.watching import (
    DEFAULT_FACTOR,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_MAX_INTERVAL_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
)
from videogen_cli.errors import (
    InterruptedError_,
    JobFailedError,
    ProviderError,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    from videogen_cli.core.watching import Backoff, WatchResult
    from videogen_cli.domain import Job

WATCH_PANEL = "Watch options (with --watch)"

TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Give up waiting after this many seconds (exit 6).")
]
IntervalOpt = Annotated[float, typer.Option("--interval", help="First wait between polls, s.")]
MaxIntervalOpt = Annotated[float, typer.Option("--max-interval", help="Longest wait, seconds.")]
FactorOpt = Annotated[float, typer.Option("--factor", help="Each wait is this times the last.")]
NoJitterOpt = Annotated[
    bool, typer.Option("--no-jitter", help="Wait exact intervals (jitter spreads pollers).")
]
NoStreamOpt = Annotated[
    bool,
    typer.Option("--no-stream", help="Poll even where fal serves its status stream."),
]


def generate(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What the video shows.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model slug or id (see `videogen models`).")
    ] = DEFAULT_MODEL,
    image_url: Annotated[
        str | None,
        typer.Option("--image-url", help="First frame; required by image-to-video models."),
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Seconds, as the model allows (4, 8s…).")
    ] = None,
    resolution: Annotated[str | None, typer.Option("--resolution", help="e.g. 720p.")] = None,
    aspect_ratio: Annotated[
        str | None, typer.Option("--aspect-ratio", help="e.g. 16:9, 9:16.")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="User UUID [env VIDEOGEN_USER_ID].")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key", help="Reuse to retry safely; default: a new UUID, printed."
        ),
    ] = None,
    watch_: Annotated[
        bool, typer.Option("--watch", help="Then follow the job like `videogen watch`.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            rich_help_panel=WATCH_PANEL,
            help="Give up waiting after this many seconds (exit 6).",
        ),
    ] = DEFAULT_TIMEOUT_SECONDS,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", rich_help_panel=WATCH_PANEL, help="First wait between polls, s."
        ),
    ] = DEFAULT_INTERVAL_SECONDS,
    max_interval: Annotated[
        float,
        typer.Option("--max-interval", rich_help_panel=WATCH_PANEL, help="Longest wait, seconds."),
    ] = DEFAULT_MAX_INTERVAL_SECONDS,
    factor: Annotated[
        float,
        typer.Option(
            "--factor", rich_help_panel=WATCH_PANEL, help="Each wait is this times the last."
        ),
    ] = DEFAULT_FACTOR,
    no_jitter: Annotated[
        bool,
        typer.Option(
            "--no-jitter",
            rich_help_panel=WATCH_PANEL,
            help="Wait exact intervals (jitter spreads pollers).",
        ),
    ] = False,
    no_stream: Annotated[
        bool,
        typer.Option(
            "--no-stream", rich_help_panel=WATCH_PANEL, help="Poll, even where fal streams."
        ),
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Create a video job, charging the user's credits exactly once per idempotency key.

    Sending the same key again with the same request returns the first job
    (`replayed: true`) and charges nothing; the same key with a different request is
    refused (exit 4). Settings are checked against the model before any charge.

    Examples:

    ```
    $ videogen generate -p "a paper boat in the rain" --duration 4s --watch
    $ videogen generate -m veo3.1-i2v --image-url https://example.com/cat.png \\
        -p "the cat jumps" --idempotency-key order-1234
    ```
    """
    from videogen_cli.core.watching import Backoff, check_timeout
    from videogen_cli.domain import JobStatus

    backoff = Backoff(interval, max_interval, factor, not no_jitter)
    with open_session(json_mode) as s:
        # Bad watch flags must fail before anything is charged (README "Exit codes"), and
        # are bad input even without --watch.
        timeout = check_timeout(timeout)
        backoff.validate()
        prepared = s.service.prepare(
            user_id=resolve_user(s, user),
            model_ref=model,
            prompt=prompt,
            image_url=image_url,
            settings={"duration": duration, "resolution": resolution, "aspect_ratio": aspect_ratio},
        )
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())

        def charged(job: Job) -> None:
            # Only once the credits were taken: never before a replay, a refusal or a
            # validation error.
            s.out.info(f"submitting to {prepared.model.endpoint_id} ({job.credits_used} credits)…")

        try:
            outcome = s.service.generate(prepared, key, on_charged=charged)
        except KeyboardInterrupt:
            raise InterruptedError_(
                "interrupted while creating the job",
                hint=f"run the same command again with --idempotency-key {key}: it replays "
                "a job that was created, or creates it once; a charged job that never "
                "reached fal is refunded by `videogen status`",
            ) from None
        s.out.emit(outcome)
        if outcome.notice:
            s.out.info(f"notice: {outcome.notice}; `videogen status` follows it")
        if isinstance(outcome.submit_error, ProviderError):
            # fal could not be reached (exit 5); the job is failed and refunded. A refusal
            # by fal (4xx) is a failed job like any other: exit 1 below.
            s.out.exit_after_result(outcome.submit_error)
        if outcome.job.status is JobStatus.FAILED:
            s.out.exit_after_result(
                JobFailedError(
                    f"job {outcome.job.job_id} failed: {outcome.job.error}",
                    hint="its credits were refunded; fix the request and use a new key",
                ),
            )
        if watch_:
            _watch_and_exit(s, [outcome.job.job_id], timeout, backoff, stream=not no_stream)


def status(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="The job's UUID.")],
    no_sync: Annotated[
        bool, typer.Option("--no-sync", help="Read the database only; do not ask fal.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Show a job; if it is still running, ask fal first and store what it says.

    A failed job is refunded automatically, exactly once. A job that was charged but
    never reached fal is failed and refunded once it is older than the grace period.
    A job is synced only through the provider that took it: configured for another
    one, `status` shows the stored job and says why it did not sync (JSON: `"synced":
    false` and `"sync_reason"`). One "not found" from fal never fails a job; three in
    a row do (and refund it).

    Examples:

    ```
    $ videogen status JOB_ID
    $ videogen status JOB_ID --no-sync --json
    ```
    """
    with open_session(json_mode) as s:
        if no_sync:
            s.out.emit(s.service.refresh(job_id, sync=False))
        else:
            s.out.emit(s.service.check(job_id))


def watch_cmd(
    job_ids: Annotated[list[str], typer.Argument(metavar="JOB_ID", help="One or more job UUIDs.")],
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_SECONDS,
    interval: IntervalOpt = DEFAULT_INTERVAL_SECONDS,
    max_interval: MaxIntervalOpt = DEFAULT_MAX_INTERVAL_SECONDS,
    factor: FactorOpt = DEFAULT_FACTOR,
    no_jitter: NoJitterOpt = False,
    no_stream: NoStreamOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Follow jobs until they finish, over fal's status stream or by polling.

    Where fal serves no stream (or with --no-stream) it polls, backing off {backoff}.
    Many jobs share at most {max_connections} connections to fal, each on its own
    schedule.
    Exit 0 when all completed, 1 when any failed, 6 when the deadline passed first
    (the jobs keep running on fal; run the same command again to resume), 130 on
    Ctrl-C.

    Examples:

    ```
    $ videogen watch JOB_ID --timeout 600
    $ videogen watch JOB_ID OTHER_JOB_ID --json | jq .status
    ```
    """
    from videogen_cli.core.watching import Backoff, check_timeout

    with open_session(json_mode) as s:
        backoff = Backoff(interval, max_interval, factor, not no_jitter)
        backoff.validate()  # a nan or huge wait would never end or overflow (exit 2 instead)
        _watch_and_exit(s, job_ids, check_timeout(timeout), backoff, stream=not no_stream)


def _backoff_steps() -> str:
    """`5 s → 10 s → 20 s`: the default waits between polls, from the defaults."""
    waits = [DEFAULT_INTERVAL_SECONDS]
    while waits[-1] * DEFAULT_FACTOR < DEFAULT_MAX_INTERVAL_SECONDS:
        waits.append(waits[-1] * DEFAULT_FACTOR)
    if waits[-1] < DEFAULT_MAX_INTERVAL_SECONDS:
        waits.append(DEFAULT_MAX_INTERVAL_SECONDS)
    return " → ".join(f"{wait:g} s" for wait in waits)


# The watch help quotes the default waits: written from the constants, never by hand.
watch_cmd.__doc__ = (
    (watch_cmd.__doc__ or "")
    .replace("{backoff}", _backoff_steps())
    .replace("{max_connections}", str(MAX_CONNECTIONS))
)


def _watch_and_exit(
    s: Session, job_ids: list[str], timeout: float, backoff: Backoff, *, stream: bool = True
) -> None:
    from videogen_cli.cli.progress import JsonLinesReporter, LineReporter, LiveReporter

    reporter: JsonLinesReporter | LineReporter | LiveReporter
    if s.out.json_mode:
        reporter = JsonLinesReporter(s.out)
    elif s.out.stderr_is_tty():
        reporter = LiveReporter(s.service.clock)
    else:
        reporter = LineReporter(s.out, s.service.clock)
    resume = "videogen watch " + " ".join(job_ids)
    try:
        with reporter:
            result = s.service.watch(
                job_ids,
                timeout=timeout,
                backoff=backoff,
                reporter=reporter,
                stream=stream,
            )
    except KeyboardInterrupt:
        raise InterruptedError_(
            "interrupted; the jobs keep running on fal", hint=f"resume with: {resume}"
        ) from None
    _finish_watch(s, result, timeout, resume, reporter.printed)


def _finish_watch(
    s: Session, result: WatchResult, timeout: float, resume: str, printed: set[str]
) -> None:
    from videogen_cli.cli.progress import describe

    if not s.out.json_mode:
        for job in result.jobs.values():
            if job.job_id not in printed:  # off a terminal, finished jobs are printed already
                s.out.result(f"{job.job_id} {describe(job)}")
    if result.failed:
        ids = ", ".join(j.job_id for j in result.failed)
        hint = "failed jobs are refunded automatically; see: videogen status " + (
            result.failed[0].job_id
        )
        if result.timed_out and result.running:  # exit 1 wins over 6: say what still runs
            running = " ".join(j.job_id for j in result.running)
            hint += f"; still running after {timeout:g} s, resume with: videogen watch {running}"
        s.out.exit_after_result(
            JobFailedError(f"job {ids} failed: {result.failed[0].error}", hint=hint)
        )
    if result.unsynced:
        from videogen_cli.errors import BackendError

        job_id, reason = next(iter(result.unsynced.items()))
        # Another provider's job is never synced here (README "Each job stays with its
        # provider"): stop following it instead of waiting for the deadline.
        raise BackendError(
            f"not followed here: {reason}",
            code="provider_mismatch",
            hint=f"run `videogen watch {job_id}` where its provider is configured",
        )
    if result.timed_out:
        running = " ".join(j.job_id for j in result.running)
        raise WaitTimeoutError(
            f"still running after {timeout:g} s: {running}",
            hint=f"the job keeps running on fal; resume with: {resume}",
        )
