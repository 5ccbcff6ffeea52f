"""How `watch` shows its progress: a live panel on a terminal, plain lines elsewhere.

All three reporters implement the core's `WatchReporter`. The live display draws on
stderr only when stderr is a terminal; CI logs get one line per status change plus a
heartbeat every minute, so a silent job is never mistaken for a hung one. Off a
terminal a job's final state is printed once, on stdout, as it happens (README
"Commands").
"""

from __future__ import annotations

from collections import Counter, deque
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videogen_cli.cli.output import Output
    from videogen_cli.domain import Job
    from videogen_cli.ports import Clock

HEARTBEAT_SECONDS = 60.0
# Above this many jobs the live table shows a summary row and the latest changes.
LIVE_ROWS = 20
RECENT_CHANGES = 10


def describe(job: Job) -> str:
    """`pending (queue position 2)`, `completed https://…`, `failed: <error>`."""
    from videogen_cli.domain import JobStatus

    text = job.status.value
    if job.queue_position is not None and job.status is JobStatus.PENDING:
        text += f" (queue position {job.queue_position})"
    if job.video_url:
        text += f" {job.video_url}"
    if job.error:
        text += f": {job.error}"
    return text


def provider_note(transient_error: str) -> str:
    """What to show for a transient provider problem: the deadline in plain words, not
    the adapter's internal message."""
    if transient_error.startswith("deadline reached"):
        return "deadline reached"
    return f"provider: {transient_error}"


def counts(jobs: Any) -> str:
    """`2 processing, 1 completed` in a fixed status order (JobStatus's)."""
    from videogen_cli.domain import JobStatus

    tally = Counter(job.status for job in jobs)
    return ", ".join(f"{tally[s]} {s.value}" for s in JobStatus if tally[s])


class JsonLinesReporter:
    """`--json`: one job object per line, one line per change."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.printed: set[str] = set()

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        if changed:
            self.out.json(job.to_json())

    def waiting(self, seconds: float) -> None:
        pass

    def __enter__(self) -> JsonLinesReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LineReporter:
    """No terminal: one stderr line per status change, a heartbeat each minute, and
    each job's final state once, on stdout, when it is reached."""

    def __init__(self, out: Output, clock: Clock | None = None) -> None:
        self.out = out
        self.clock = clock or _system_clock()
        self.started = self.clock.monotonic()
        self.last_line = self.started
        self.jobs: dict[str, Job] = {}
        self.printed: set[str] = set()  # jobs whose result line is on stdout already

    def _line(self, text: str) -> None:
        elapsed = self.clock.monotonic() - self.started
        self.out.info(f"[{elapsed:6.1f}s] {text}")
        self.last_line = self.clock.monotonic()

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        self.jobs[job.job_id] = job
        if changed and job.status.terminal:
            self.out.result(f"{job.job_id} {describe(job)}")
            self.printed.add(job.job_id)
            self.last_line = self.clock.monotonic()
        elif changed:
            self._line(f"job {job.job_id} {describe(job)}")
        elif transient_error:
            self._line(
                f"job {job.job_id} still {job.status.value}; {provider_note(transient_error)}"
            )

    def following(self, job_id: str, streaming: bool, reason: str | None) -> None:
        if not streaming and reason:
            self._line(f"job {job_id}: status stream unavailable ({reason}); polling instead")

    def tick(self) -> float:
        """Called by the watch loop; prints the heartbeat when a minute passed in silence
        and says when it wants to be called again."""
        quiet: float = self.clock.monotonic() - self.last_line
        if quiet >= HEARTBEAT_SECONDS:
            running = [j for j in self.jobs.values() if not j.status.terminal]
            if len(self.jobs) == 1 and running:
                self._line(f"job {running[0].job_id} still {describe(running[0])}")
            elif running:
                self._line(f"still running: {counts(self.jobs.values())}")
            quiet = 0.0
        return HEARTBEAT_SECONDS - quiet

    def waiting(self, seconds: float) -> None:
        pass

    def __enter__(self) -> LineReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LiveReporter:
    """A terminal: a rich Live table on stderr, redrawn a few times a second.

    Up to ``LIVE_ROWS`` jobs, one row each; beyond, a summary row with the count per
    status and the most recent changes, so 500 jobs stay readable.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.clock = clock or _system_clock()
        self.started = self.clock.monotonic()
        self.jobs: dict[str, Job] = {}
        self.polls: dict[str, int] = {}
        self.notes: dict[str, str] = {}
        self.streaming: set[str] = set()
        self.recent: deque[str] = deque(maxlen=RECENT_CHANGES)
        self.next_poll_at: float | None = None
        self.printed: set[str] = set()
        self.console = Console(stderr=True)
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=4, transient=False
        )
        self.live.get_renderable = self._render  # type: ignore[method-assign]

    def _render(self) -> Any:
        from rich.markup import escape
        from rich.table import Table

        from videogen_cli.cli.output import safe_text

        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("job", "status", "queue", "elapsed", "polls", "next poll", "error"):
            # A job id is copied from here: never folded. The error folds, kept readable.
            table.add_column(
                column,
                overflow="fold",
                no_wrap=column == "job",
                min_width={"error": 12}.get(column),
            )
        now = self.clock.monotonic()
        wait = ""
        if self.next_poll_at is not None:
            wait = f"{max(0.0, self.next_poll_at - now):.0f}s"
        shown = list(self.jobs)
        if len(shown) > LIVE_ROWS:
            running = sum(1 for j in self.jobs.values() if not j.status.terminal)
            table.add_row(
                f"[bold]{len(shown)} jobs[/]",
                counts(self.jobs.values()),
                "",
                f"{now - self.started:.0f}s",
                str(sum(self.polls.values())),
                f"{running} running",
                "",
            )
            shown = list(reversed(self.recent))
        from videogen_cli.domain import JobStatus

        styles = {
            JobStatus.COMPLETED: "green",
            JobStatus.FAILED: "red",
            JobStatus.PROCESSING: "cyan",
        }
        for job_id in shown:
            job = self.jobs[job_id]
            status = job.status.value
            style = styles.get(job.status, "")
            cell = f"[{style}]{status}[/]" if style else status
            if self.notes.get(job_id):
                cell += f" [dim]{escape(safe_text(self.notes[job_id]))}[/]"
            next_poll = "live" if job_id in self.streaming else wait
            table.add_row(
                job_id,
                cell,
                "" if job.queue_position is None else str(job.queue_position),
                f"{now - self.started:.0f}s",
                str(self.polls.get(job_id, 0)),
                "" if job.status.terminal else next_poll,
                # fal's words: escaped, so "[/]" is not rich markup and "\x1b[2J"
                # does not reach the terminal.
                escape(safe_text(job.error or "")),
            )
        return table

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        self.jobs[job.job_id] = job
        self.polls[job.job_id] = self.polls.get(job.job_id, 0) + 1
        self.notes[job.job_id] = provider_note(transient_error) if transient_error else ""
        if changed:
            if job.job_id in self.recent:
                self.recent.remove(job.job_id)
            self.recent.append(job.job_id)
        if job.status.terminal:
            self.streaming.discard(job.job_id)
        if len(self.jobs) <= LIVE_ROWS:
            self.live.refresh()  # many jobs: the 4-per-second auto refresh is enough

    def following(self, job_id: str, streaming: bool, reason: str | None) -> None:
        if streaming:
            self.streaming.add(job_id)
        else:
            self.streaming.discard(job_id)

    def waiting(self, seconds: float) -> None:
        self.next_poll_at = self.clock.monotonic() + seconds

    def __enter__(self) -> LiveReporter:
        self.live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.next_poll_at = None
        self.live.stop()


def _system_clock() -> Clock:
    from videogen_cli.core.jobs import SystemClock

    return SystemClock()
