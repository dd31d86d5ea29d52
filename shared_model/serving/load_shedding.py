"""Load shedding: past MAX_IN_FLIGHT requests in one worker, answer 503 at once.

Without a bound, a server that receives more than it can serve queues the excess: latency
grows until clients time out, and the work done for them is thrown away. A bound turns that
into a quick, explicit "busy, retry" that a client or load balancer can act on.

Uvicorn's own ``--limit-concurrency`` answers plain text, not the contract's JSON, and counts
idle keep-alive connections too, so the apps count requests themselves, with this class; the
server-level limit stays as a backstop above it. /health and /metrics are never shed: a busy
worker is alive, and a probe that failed under load would get it restarted for nothing.
"""

from __future__ import annotations

import threading

from shared_model.serving.errors import ServiceError

NEVER_SHED = frozenset({"/health", "/metrics"})
# A 503 with Retry-After tells well-behaved clients (and proxies) when to come back.
RETRY_AFTER = {"Retry-After": "1"}


class Overloaded(ServiceError):
    status_code = 503

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Server busy: {limit} requests already in progress in this worker "
            "(MAX_IN_FLIGHT); try again shortly"
        )


class InFlightLimit:
    """Counts the requests this worker is serving; ``enter`` refuses one past ``limit``.

    A lock, because Flask under threaded workers enters from many threads; uncontended it
    costs well under a microsecond. ``limit`` 0 means no limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()

    def applies_to(self, path: str) -> bool:
        return self.limit > 0 and path not in NEVER_SHED

    def enter(self) -> None:
        """Count one request in, or raise Overloaded (nothing counted) when full."""
        with self._lock:
            if self.in_flight >= self.limit:
                raise Overloaded(self.limit)
            self.in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
