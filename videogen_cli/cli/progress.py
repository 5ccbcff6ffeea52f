"""How `watch` shows its progress: a live panel on a terminal, plain lines elsewhere.

All three reporters implement the core's `WatchReporter`. The live display draws on
stderr only when stderr is a terminal; CI logs get one line per status change plus a
heartbeat, so a silent job is never mistaken for a hung one.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from videogen_cli.cli.output import Output
from videogen_cli.domain import Job

HEARTBEAT_SECONDS = 60.0


def describe(job: Job) -> str:
    """`pending (queue position 2)`, `completed https://…`, `failed: <error>`."""
    text = job.status.value
    if job.queue_position is not None and job.status.value == "pending":
        text += f" (queue position {job.queue_position})"
    if job.video_url:
        text += f" {job.video_url}"
    if job.error:
        text += f": {job.error}"
    return text


class JsonLinesReporter:
    """`--json`: one job object per line, one line per change."""

    def __init__(self, out: Output) -> None:
        self.out = out

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
    """No terminal: one stderr line per status change, and a heartbeat while waiting."""

    def __init__(self, out: Output, clock: Any = time) -> None:
        self.out = out
        self.clock = clock
        self.started = clock.monotonic()
        self.last_line = self.started

    def _line(self, text: str) -> None:
        elapsed = self.clock.monotonic() - self.started
        self.out.info(f"[{elapsed:6.1f}s] {text}")
        self.last_line = self.clock.monotonic()

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        if changed:
            self._line(f"job {job.job_id} {describe(job)}")
        elif transient_error:
            self._line(f"job {job.job_id} still {job.status.value}; provider: {transient_error}")
        elif self.clock.monotonic() - self.last_line >= HEARTBEAT_SECONDS:
            self._line(f"job {job.job_id} still {describe(job)}")

    def waiting(self, seconds: float) -> None:
        pass

    def __enter__(self) -> LineReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LiveReporter:
    """A terminal: a rich Live table on stderr, redrawn as polls and waits happen."""

    def __init__(self, clock: Any = time) -> None:
        from rich.console import Console
        from rich.live import Live

        self.clock = clock
        self.started = clock.monotonic()
        self.jobs: dict[str, Job] = {}
        self.polls: dict[str, int] = {}
        self.notes: dict[str, str] = {}
        self.next_poll_at: float | None = None
        self.console = Console(stderr=True)
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=4, transient=False
        )
        self.live.get_renderable = self._render  # type: ignore[method-assign]

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("job", "status", "queue", "elapsed", "polls", "next poll"):
            table.add_column(column, overflow="fold")
        now = self.clock.monotonic()
        wait = ""
        if self.next_poll_at is not None:
            wait = f"{max(0.0, self.next_poll_at - now):.0f}s"
        for job_id, job in self.jobs.items():
            status = job.status.value
            style = {"completed": "green", "failed": "red", "processing": "cyan"}.get(status, "")
            cell = f"[{style}]{status}[/]" if style else status
            if self.notes.get(job_id):
                cell += f" [dim]{self.notes[job_id]}[/]"
            table.add_row(
                job_id,
                cell,
                "" if job.queue_position is None else str(job.queue_position),
                f"{now - self.started:.0f}s",
                str(self.polls.get(job_id, 0)),
                "" if job.status.terminal else wait,
            )
        return table

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        self.jobs[job.job_id] = job
        self.polls[job.job_id] = self.polls.get(job.job_id, 0) + 1
        self.notes[job.job_id] = f"provider: {transient_error}" if transient_error else ""
        self.live.refresh()

    def waiting(self, seconds: float) -> None:
        self.next_poll_at = self.clock.monotonic() + seconds
        self.live.refresh()

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
