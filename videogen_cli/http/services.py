"""One JobService per worker thread.

The core is synchronous and a store holds one database connection (sqlite3 or psycopg)
that two threads must never use at once. The endpoints run in the server's thread pool,
and each worker thread gets a JobService (store + provider) of its own on first use, kept
for the next requests that thread serves. So requests run side by side: a slow fal
submit in one thread never holds up get-video-status in another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from videogen_cli.core.jobs import JobService


class ServicePool:
    def __init__(self, factory: Callable[[], JobService]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[JobService] = []

    def get(self) -> JobService:
        """This thread's service, built the first time the thread asks."""
        service: JobService | None = getattr(self._local, "service", None)
        if service is None:
            service = self._factory()
            with self._lock:
                self._open.append(service)
            self._local.service = service
        return service

    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        """At shutdown, once no request runs: release every connection."""
        with self._lock:
            services, self._open = self._open, []
        self._local = threading.local()
        for service in services:
            try:
                service.close()
            except Exception:
                pass  # closing is best effort; the process is stopping
