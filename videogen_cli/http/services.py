"""JobServices lent to one request at a time.

The core is synchronous and a store holds one database connection (sqlite3 or psycopg)
that two threads must never use at once. The endpoints run in the server's thread pool;
each request borrows a JobService (store + provider) that no other request holds, and
gives it back when it is done. So requests run side by side (a slow fal submit in one
never holds up get-video-status in another) and connections are reused, not opened per
request. Not per thread: the pool's threads come and go, and would strand connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from videogen_cli.core.jobs import JobService
from videogen_cli.http.errors import ApiError

# Idle services kept for the next requests; more are opened under load and closed after.
MAX_IDLE = 8


class ServicePool:
    def __init__(self, factory: Callable[[], JobService], *, max_idle: int = MAX_IDLE) -> None:
        self._factory = factory
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[JobService] = []
        self.opened = 0  # how many services were ever built (tests read it)

    @contextmanager
    def lease(self) -> Iterator[JobService]:
        """A service for this request only."""
        with self._lock:
            service = self._idle.pop() if self._idle else None
        if service is None:
            service = self._factory()
            with self._lock:
                self.opened += 1
        try:
            yield service
        except ApiError as exc:
            if exc.answer.status >= 500:
                _close(service)  # its connection may be what failed: the next one is new
            else:
                self._give_back(service)
            raise
        except BaseException:
            _close(service)
            raise
        else:
            self._give_back(service)

    def _give_back(self, service: JobService) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(service)
                return
        _close(service)

    def close(self) -> None:
        """At shutdown, once no request runs: release every idle connection."""
        with self._lock:
            services, self._idle = self._idle, []
        for service in services:
            _close(service)


def _close(service: JobService) -> None:
    try:
        service.close()
    except Exception:
        pass  # closing is best effort: the service is dropped either way
