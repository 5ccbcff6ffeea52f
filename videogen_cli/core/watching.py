"""Following jobs until they finish or a deadline passes (design §1 `watch`).

The loop polls every job still running, reports each poll, then sleeps a capped,
jittered, exponentially growing interval. Sleeps are clipped so the loop never
overruns its deadline; on timeout the jobs keep running at the provider and the
caller prints how to resume.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from videogen_cli.core.jobs import JobService
from videogen_cli.domain import Job
from videogen_cli.errors import UsageError


@dataclass(frozen=True)
class Backoff:
    interval: float = 5.0
    max_interval: float = 20.0
    factor: float = 2.0
    jitter: bool = True

    def validate(self) -> None:
        if self.interval <= 0:
            raise UsageError("--interval must be greater than 0")
        if self.max_interval < self.interval:
            raise UsageError("--max-interval must be at least --interval")
        if self.factor < 1:
            raise UsageError("--factor must be at least 1")

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """Delay before poll `attempt + 1`: interval × factor^attempt, capped, ±20 % jitter.

        Jitter spreads many watchers so they do not poll in lockstep; it is applied after
        the cap so even capped waits are spread, and never pushes a wait past the cap.
        """
        base = min(self.interval * self.factor**attempt, self.max_interval)
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
