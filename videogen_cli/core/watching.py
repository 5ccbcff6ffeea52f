"""Following jobs until they finish or a deadline passes (design §1 `watch`).

The loop polls every job still running, reports each poll, then sleeps a capped,
jittered, exponentially growing interval. Sleeps are clipped so the loop never
overruns its deadline; on timeout the jobs keep running at the provider and the
caller prints how to resume.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from videogen_cli.core.jobs import JobService
from videogen_cli.domain import Job
from videogen_cli.errors import UsageError

# Sane bounds for watching (README "Commands", `watch`): a week is longer than any video
# job; an hour between polls is the longest wait that still looks like watching. Every
# bound also keeps the arithmetic finite (no overflow, no nan deadline that never passes).
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_INTERVAL_SECONDS = 3600.0
MIN_INTERVAL_SECONDS = 0.001
MAX_FACTOR = 10.0


def _finite_in(name: str, value: float, low: float, high: float, *, hint: str) -> float:
    """`value` as a float when low <= value <= high (so never nan or inf), else exit 2."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and low <= number <= high):
        raise UsageError(
            f"{name} must be a number from {low:g} to {high:g}, not {value}", hint=hint
        )
    return number


def check_timeout(timeout: float) -> float:
    """The `--timeout` of `watch` and `generate --watch`: seconds, > 0 and at most a week.

    Called before anything is charged or polled: a nan deadline never passes and 1e308
    overflows the clock arithmetic.
    """
    if isinstance(timeout, int | float) and math.isfinite(timeout) and timeout <= 0:
        raise UsageError(
            f"--timeout must be greater than 0, not {timeout:g}",
            hint="pass the seconds to wait, e.g. --timeout 300",
        )
    return _finite_in(
        "--timeout",
        timeout,
        MIN_INTERVAL_SECONDS,
        MAX_TIMEOUT_SECONDS,
        hint="pass the seconds to wait, e.g. --timeout 300 (at most 604800, a week)",
    )


@dataclass(frozen=True)
class Backoff:
    interval: float = 5.0
    max_interval: float = 20.0
    factor: float = 2.0
    jitter: bool = True

    def validate(self) -> None:
        """Refuse (exit 2) waits that are not finite, not positive or out of bounds."""
        hint = "e.g. --interval 5 --max-interval 20 --factor 2 (seconds; at most 3600)"
        interval = _finite_in(
            "--interval", self.interval, MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS, hint=hint
        )
        ceiling = _finite_in(
            "--max-interval",
            self.max_interval,
            MIN_INTERVAL_SECONDS,
            MAX_INTERVAL_SECONDS,
            hint=hint,
        )
        if ceiling < interval:
            raise UsageError("--max-interval must be at least --interval", hint=hint)
        _finite_in("--factor", self.factor, 1.0, MAX_FACTOR, hint=hint)

    def _steps_to_cap(self) -> int:
        """How many growths take the interval to the cap (0 when it never grows)."""
        if not (self.factor > 1 and 0 < self.interval < self.max_interval < math.inf):
            return 0
        return max(0, math.ceil(math.log(self.max_interval / self.interval, self.factor)))

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """Delay before poll `attempt + 1`: interval × factor^attempt, capped, ±20 % jitter.

        The exponent stops growing once the cap is reached, so `factor ** attempt` is never
        computed past it (it overflowed at the 1024th poll of a fast watch). Jitter spreads
        many watchers so they do not poll in lockstep; it is applied after the cap so even
        capped waits are spread, and never pushes a wait past the cap.
        """
        base = min(
            self.interval * self.factor ** min(attempt, self._steps_to_cap()), self.max_interval
        )
        if not self.jitter:
            return base
        return min(base * (0.8 + 0.4 * rand()), self.max_interval)


class WatchReporter(Protocol):
    """What the watch loop tells its caller; the CLI draws it, tests record it."""

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None: ...

    def waiting(self, seconds: float) -> None: ...


@dataclass
class WatchResult:
    jobs: dict[str, Job] = field(default_factory=dict)  # last known state, in input order
    timed_out: bool = False
    polls: int = 0

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.status.value == "failed"]

    @property
    def running(self) -> list[Job]:
        return [j for j in self.jobs.values() if not j.status.terminal]


def watch(
    service: JobService,
    job_ids: Sequence[str],
    *,
    timeout: float,
    backoff: Backoff,
    reporter: WatchReporter,
    rand: Callable[[], float] = random.random,
) -> WatchResult:
    """Poll until every job is terminal or `timeout` seconds have passed."""
    if timeout <= 0:
        raise UsageError("--timeout must be greater than 0")
    backoff.validate()
    # Resolve every id first so a typo fails before any waiting starts.
    result = WatchResult(jobs={job_id: service.get_job(job_id) for job_id in job_ids})
    clock = service.clock
    deadline = clock.monotonic() + timeout
    service.set_deadline(deadline)
    seen: dict[str, tuple[str, int | None] | None] = dict.fromkeys(result.jobs)
    attempt = 0
    while True:
        for job_id, known in list(result.jobs.items()):
            if known.status.terminal and seen[job_id] is not None:
                continue
            outcome = service.refresh(job_id)
            job = outcome.job
            result.polls += 1
            signature = (job.status.value, job.queue_position)
            changed = seen[job_id] != signature
            seen[job_id] = signature
            result.jobs[job_id] = job
            reporter.polled(job, changed=changed, transient_error=outcome.transient_error)
        if not result.running:
            return result
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            result.timed_out = True
            return result
        pause = min(backoff.delay(attempt, rand), remaining)
        attempt += 1
        reporter.waiting(pause)
        clock.sleep(pause)
