"""Load shedding: past MAX_IN_FLIGHT requests in one worker, a JSON 503 at once, not a queue.

/health, /metrics and the protocol's health probes are never shed: a busy worker is alive.
"""

from __future__ import annotations

import threading

from shared_model.serving.errors import ServiceError

NEVER_SHED = frozenset(
    {"/health", "/metrics", "/v2/health/live", "/v2/health/ready", "/v2/models/diabetes/ready"}
)
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
    """Counts the requests this worker serves; ``enter`` refuses one past ``limit`` (0: none)."""

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
