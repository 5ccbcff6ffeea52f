"""Following jobs until they finish or a deadline passes (README "Commands").

Each running job is followed over the provider's status stream when it serves one
(fal's SSE stream: a change is seen as it happens, in one request), and otherwise
polled on its own capped, jittered, exponentially growing schedule. A stream that is
refused, breaks or goes quiet hands its job back to polling. Requests run on a fixed
pool of worker threads (at most ``max_connections`` in flight, whatever the number of
jobs); the loop itself only schedules: it wakes at the next due poll, the deadline,
or when a worker reports. Nothing runs past the deadline (every provider request is
clipped to it); on timeout the jobs keep running at the provider and the caller
prints how to resume.

Every status, polled or streamed, is stored through ``JobService`` (``refresh`` /
``apply_provider_status``): the stream changes how often we learn, never what we do.
"""

from __future__ import annotations

import contextlib
import math
import queue
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from videogen_cli.domain import JobStatus
from videogen_cli.errors import ProviderError, UsageError

if TYPE_CHECKING:
    from videogen_cli.core.jobs import JobService, RefreshOutcome
    from videogen_cli.domain import Job, ProviderHandle, ProviderStatus
    from videogen_cli.ports import JobStore

# Requests in flight to the provider at most, for any number of jobs.
MAX_CONNECTIONS = 32

# The defaults of `watch` and `generate --watch` (README "Commands" quotes them; the CLI's
# options and help texts read them from here): give up after 5 minutes; first wait 5 s,
# doubling up to 20 s between polls.
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_INTERVAL_SECONDS = 5.0
DEFAULT_MAX_INTERVAL_SECONDS = 20.0
DEFAULT_FACTOR = 2.0

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
            hint=f"pass the seconds to wait, e.g. --timeout {DEFAULT_TIMEOUT_SECONDS:g}",
        )
    return _finite_in(
        "--timeout",
        timeout,
        MIN_INTERVAL_SECONDS,
        MAX_TIMEOUT_SECONDS,
        hint=f"pass the seconds to wait, e.g. --timeout {DEFAULT_TIMEOUT_SECONDS:g} "
        f"(at most {MAX_TIMEOUT_SECONDS:g}, a week)",
    )


@dataclass(frozen=True)
class Backoff:
    interval: float = DEFAULT_INTERVAL_SECONDS
    max_interval: float = DEFAULT_MAX_INTERVAL_SECONDS
    factor: float = DEFAULT_FACTOR
    jitter: bool = True

    def validate(self) -> None:
        """Refuse (exit 2) waits that are not finite, not positive or out of bounds."""
        hint = (
            f"e.g. --interval {DEFAULT_INTERVAL_SECONDS:g} "
            f"--max-interval {DEFAULT_MAX_INTERVAL_SECONDS:g} --factor {DEFAULT_FACTOR:g} "
            f"(seconds; at most {MAX_INTERVAL_SECONDS:g})"
        )
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
    """What the watch loop tells its caller; the CLI draws it, tests record it.

    ``polled`` comes once per status learnt (a poll or a stream event), ``waiting``
    before the loop idles until the next due poll. A reporter may also define
    ``following(job_id, streaming, reason)``: called when a job's stream opens
    (``streaming=True``) or hands the job back to polling (``reason`` says why), and
    ``tick() -> seconds``: called on each turn of the loop, which wakes again within
    the seconds it returns (a heartbeat on time, not on the next poll).
    """

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None: ...

    def waiting(self, seconds: float) -> None: ...


@dataclass
class WatchResult:
    jobs: dict[str, Job] = field(default_factory=dict)  # last known state, in input order
    timed_out: bool = False
    polls: int = 0  # status checks asked of the provider (polls and stream opens)
    streams: int = 0  # status streams opened
    # Jobs this process may not sync (another provider took them): job id -> why. They
    # are shown as stored and no longer followed (README "Each job stays with its
    # provider").
    unsynced: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.status is JobStatus.FAILED]

    @property
    def running(self) -> list[Job]:
        """Jobs still followed: not terminal, and this process's provider's."""
        return [j for k, j in self.jobs.items() if not j.status.terminal and k not in self.unsynced]


def watch(
    service: JobService,
    job_ids: Sequence[str],
    *,
    timeout: float,
    backoff: Backoff,
    reporter: WatchReporter,
    rand: Callable[[], float] = random.random,
    stream: bool = True,
    max_connections: int = MAX_CONNECTIONS,
) -> WatchResult:
    """Follow every job until it is terminal or `timeout` seconds have passed.

    ``stream=False`` (``--no-stream``) polls even where the provider serves a stream.
    """
    timeout = check_timeout(timeout)  # the same rule the CLI checks before any charge
    backoff.validate()
    # Resolve every id first so a typo fails before any waiting starts; this is the
    # only read of each job before its first provider call.
    result = WatchResult(jobs={job_id: service.get_job(job_id) for job_id in job_ids})
    return _Watch(service, result, timeout, backoff, reporter, rand, stream, max_connections).run()


def check_once(service: JobService, job_id: str, *, stream: bool = True) -> RefreshOutcome:
    """`status`: one read of a running job from the provider, through the first event of
    its status stream where served (one request, like a poll), else a poll."""
    job = service.get_job(job_id)
    streamer = _streamer(service, job) if stream else None
    if streamer is None:
        return service.refresh(job_id, known=job)
    opening = _StreamOpening(streamer, job)
    try:
        outcome = service.refresh(job_id, known=job, fetch=opening.first)
    finally:
        opening.close()
    if opening.failure is not None and opening.failure.code != "provider_timeout":
        return service.refresh(job_id, known=outcome.job)  # no stream here: poll
    return outcome


# --- the engine ------------------------------------------------------------------------

_IN_WORKER = threading.local()


def _streamer(
    service: JobService, job: Job
) -> Callable[[ProviderHandle], Iterator[ProviderStatus]] | None:
    """The provider's stream method, when it has one and the job can be followed."""
    if job.status.terminal or job.provider_request_id is None:
        return None
    method = getattr(service.provider, "stream_status", None)
    return cast("Callable[[ProviderHandle], Iterator[ProviderStatus]] | None", method)


class _StreamOpening:
    """Opens a stream lazily as `refresh`'s fetch, and remembers why it failed."""

    def __init__(
        self, streamer: Callable[[ProviderHandle], Iterator[ProviderStatus]], job: Job
    ) -> None:
        self._streamer = streamer
        self.events: Iterator[ProviderStatus] | None = None
        self.failure: ProviderError | None = None
        self.last: ProviderStatus | None = None

    def first(self, handle: ProviderHandle) -> ProviderStatus:
        self.events = self._streamer(handle)
        try:
            self.last = next(self.events)
        except ProviderError as exc:
            self.failure = exc
            raise
        except StopIteration:
            self.failure = ProviderError(
                "the fal status stream ended before its first event",
                code="provider_stream_broken",
            )
            raise self.failure from None
        return self.last

    def close(self) -> None:
        close = getattr(self.events, "close", None)
        if close is not None:
            close()


class _Stopped(Exception):
    """Raised in a worker that touches the store after the watch has ended."""


class _LockedStore:
    """The job store with its calls serialised: stores are not thread-safe per
    connection, so workers share it one call at a time while their provider requests
    run in parallel (a store call is ~1 ms, a provider request ~100 ms)."""

    inner: JobStore  # set once, before any worker starts

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stopping = False

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet: say so instead of recursing
            raise AttributeError(name)
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if self.stopping and getattr(_IN_WORKER, "active", False):
                    raise _Stopped
                return attr(*args, **kwargs)

        return call


@dataclass
class _Track:
    """One job's place in the schedule."""

    index: int
    key: str  # the id as the caller gave it (the key of WatchResult.jobs)
    job: Job
    signature: tuple[str, int | None] | None = None
    attempt: int = 0  # polls made since the last reset of its backoff
    due: float = 0.0  # monotonic time of its next poll
    busy: bool = False  # a worker holds it (a poll, or a stream)
    streaming: bool = False
    stream_ok: bool = True
    last_checked: float = -math.inf


@dataclass
class _Event:
    track: _Track
    job: Job | None = None
    transient_error: str | None = None
    finished: bool = False  # the worker is done with the track
    fallback: str | None = None  # the stream ended without a terminal state: why
    global_refusal: bool = False
    opened: bool = False
    fatal: BaseException | None = None
    unsynced: str | None = None  # another provider's job: why it is not followed


class _Watch:
    def __init__(
        self,
        service: JobService,
        result: WatchResult,
        timeout: float,
        backoff: Backoff,
        reporter: WatchReporter,
        rand: Callable[[], float],
        stream: bool,
        max_connections: int,
    ) -> None:
        self.service = service
        self.result = result
        self.backoff = backoff
        self.reporter = reporter
        self.rand = rand
        self.stream = stream
        self.clock = service.clock
        self.timeout = timeout
        self.deadline = math.inf  # set by run(), once the provider is ready
        self.tracks = [_Track(i, key, job) for i, (key, job) in enumerate(result.jobs.items())]
        self.events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self.tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        running = sum(1 for t in self.tracks if not t.job.status.terminal)
        self.workers = max(1, min(max_connections, running))
        # With more jobs than workers, keep a few workers for polls and result fetches
        # so the jobs waiting for a stream are still checked on their schedule.
        reserve = 0 if running <= self.workers else max(1, self.workers // 8)
        self.max_streams = max(1, self.workers - reserve)
        self.inflight = 0
        self.streams = 0
        self.streams_refused = False
        # Until one stream has opened, one is tried alone (the others wait for it): a
        # provider that refuses streams then costs one request, not one per job.
        self.streams_confirmed = False
        self.threads: list[threading.Thread] = []
        self.store: _LockedStore | None = None
        self._following = getattr(reporter, "following", None)
        self._tick: Callable[[], float] | None = getattr(reporter, "tick", None)

    # --- main loop ---------------------------------------------------------------------

    def run(self) -> WatchResult:
        for track in self.tracks:
            if track.job.status.terminal:
                self._report(track, track.job, None)  # 1 read, no provider call
        if not any(not t.job.status.terminal for t in self.tracks):
            return self.result
        # Built here, once: workers must not race to build it, and a misconfigured
        # provider fails before any thread starts.
        provider = self.service.provider
        self.deadline = self.clock.monotonic() + self.timeout
        self.service.set_deadline(self.deadline)
        self.stream = self.stream and hasattr(provider, "stream_status")
        # The service uses the locked store until the watch ends (`_stop`).
        self.store = _LockedStore()
        self.store.inner = self.service.swap_store(cast("JobStore", self.store))
        try:
            self._loop()
        finally:
            self._stop()
        for track in self.tracks:
            if track.signature is None:  # never heard of before the deadline: as stored
                self._report(track, track.job, None)
        return self.result

    def _loop(self) -> None:
        while True:
            self._drain(block=0.0)
            if not self.result.running:
                return
            now = self.clock.monotonic()
            if now >= self.deadline:
                self.result.timed_out = True
                return
            self._dispatch(now)
            next_poll = self.deadline
            # Else only a worker's report frees a worker, or ends the probe stream.
            if self.inflight < self.workers and not self._probing():
                next_poll = min(
                    [self.deadline] + [t.due for t in self.tracks if self._idle_running(t)]
                )
            if next_poll < self.deadline:
                self.reporter.waiting(max(0.0, next_poll - now))
            wake = next_poll
            if self._tick is not None:  # e.g. a heartbeat line each minute
                wake = min(wake, now + max(0.0, self._tick()))
            pause = max(0.0, wake - now)
            if self.inflight == 0:
                if pause > 0:
                    self.clock.sleep(pause)
            else:
                self._drain(block=pause)

    def _idle_running(self, track: _Track) -> bool:
        return (
            not track.busy
            and not track.job.status.terminal
            and track.key not in self.result.unsynced
        )

    def _probing(self) -> bool:
        """A first stream is in flight and no stream has opened yet: wait for it."""
        return (
            self.stream
            and not self.streams_refused
            and not self.streams_confirmed
            and self.streams > 0
        )

    def _dispatch(self, now: float) -> None:
        if self._probing():
            return
        if self.stream and not self.streams_refused:
            candidates = sorted(
                (
                    t
                    for t in self.tracks
                    if self._idle_running(t) and t.stream_ok and t.job.provider_request_id
                ),
                key=lambda t: (t.last_checked, t.index),
            )
            for track in candidates:
                if self.streams >= self.max_streams or self.inflight >= self.workers:
                    break
                self._start(track, streaming=True)
                if self._probing():
                    return
        due = sorted(
            (t for t in self.tracks if self._idle_running(t) and t.due <= now),
            key=lambda t: (t.due, t.index),
        )
        for track in due:
            if self.inflight >= self.workers:
                break
            self._start(track, streaming=False)

    def _start(self, track: _Track, *, streaming: bool) -> None:
        track.busy = True
        track.streaming = streaming
        self.inflight += 1
        self.result.polls += 1
        if streaming:
            self.streams += 1
            self.result.streams += 1
        job = track.job
        self.tasks.put(
            lambda: self._stream_task(track, job) if streaming else self._poll_task(track, job)
        )
        if len(self.threads) < self.workers and len(self.threads) < self.inflight:
            thread = threading.Thread(target=self._worker, name="videogen-watch", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _drain(self, *, block: float) -> None:
        """Handle every event queued; with ``block`` > 0 wait that long for the first."""
        try:
            event = self.events.get(timeout=block) if block > 0 else self.events.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _handle(self, event: _Event) -> None:
        if event.fatal is not None:
            raise event.fatal
        track = event.track
        now = self.clock.monotonic()
        if event.unsynced is not None:
            self.result.unsynced[track.key] = event.unsynced
        if event.job is not None:
            track.last_checked = now
            self._report(track, event.job, event.transient_error or event.unsynced)
        if event.opened:
            self.streams_confirmed = True
            if self._following is not None:
                self._following(track.job.job_id, True, None)
        if not event.finished:
            return
        track.busy = False
        self.inflight -= 1
        was_streaming, track.streaming = track.streaming, False
        if was_streaming:
            self.streams -= 1
        if event.global_refusal:
            self.streams_refused = True
        if track.job.status.terminal:
            return
        if was_streaming and event.fallback is not None:
            # Back to polling: at once (the stream may have missed the last change),
            # then on a fresh schedule.
            track.stream_ok = False
            track.attempt = 0
            track.due = now
            if self._following is not None:
                self._following(track.job.job_id, False, event.fallback)
            return
        track.due = now + self.backoff.delay(track.attempt, self.rand)
        track.attempt += 1

    def _report(self, track: _Track, job: Job, transient_error: str | None) -> None:
        signature = (job.status.value, job.queue_position)
        changed = track.signature != signature
        track.signature = signature
        track.job = job
        self.result.jobs[track.key] = job
        self.reporter.polled(job, changed=changed, transient_error=transient_error)

    def _stop(self) -> None:
        if self.store is not None:
            self.store.stopping = True
        for _ in self.threads:
            self.tasks.put(None)
        if self.inflight == 0 and self.store is not None:
            self.service.swap_store(self.store.inner)

    # --- workers -----------------------------------------------------------------------

    def _worker(self) -> None:
        _IN_WORKER.active = True
        while True:
            task = self.tasks.get()
            if task is None:
                return
            task()

    def _poll_task(self, track: _Track, job: Job) -> None:
        try:
            outcome = self.service.refresh(job.job_id, known=job)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the loop, which raises it
            self.events.put(_Event(track, finished=True, fatal=exc))
            return
        self.events.put(
            _Event(
                track,
                outcome.job,
                outcome.transient_error,
                finished=True,
                unsynced=None if outcome.synced else outcome.not_synced_reason,
            )
        )

    def _stream_task(self, track: _Track, job: Job) -> None:
        streamer = _streamer(self.service, job)
        assert streamer is not None
        opening = _StreamOpening(streamer, job)
        try:
            outcome = self.service.refresh(job.job_id, known=job, fetch=opening.first)
            job = outcome.job
            if not outcome.synced:  # another provider's job: no stream was opened
                reason = outcome.not_synced_reason or "another provider's job"
                self.events.put(_Event(track, job, finished=True, unsynced=reason))
                return
            failure = opening.failure
            if failure is not None or opening.events is None or outcome.transient_error:
                # Refused, broken at once, or not followed at all (e.g. the job is not
                # this provider's): poll it instead.
                why = failure.message if failure is not None else outcome.transient_error
                self.events.put(
                    _Event(
                        track,
                        job,
                        outcome.transient_error if failure is None else None,
                        finished=True,
                        fallback=why or "not followed by this provider",
                        global_refusal=failure is not None
                        and failure.code == "provider_stream_refused",
                    )
                )
                return
            self.events.put(_Event(track, job, opened=True))
            last = opening.last
            assert opening.events is not None
            for status in opening.events:
                if job.status.terminal:
                    break
                if status == last:
                    continue  # a repeated event changes nothing
                last = status
                job = self.service.apply_provider_status(job, status)
                self.events.put(_Event(track, job))
            if job.status.terminal:
                self.events.put(_Event(track, finished=True))
            else:
                self.events.put(
                    _Event(track, finished=True, fallback="the status stream ended early")
                )
        except _Stopped:
            return
        except ProviderError as exc:
            if exc.code == "provider_auth":
                self.events.put(_Event(track, finished=True, fatal=exc))
            else:
                self.events.put(_Event(track, finished=True, fallback=exc.message))
        except BaseException as exc:
            self.events.put(_Event(track, finished=True, fatal=exc))
        finally:
            with contextlib.suppress(Exception):
                opening.close()
