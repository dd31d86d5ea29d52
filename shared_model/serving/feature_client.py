"""The blocking client for the feature service: the calling thread waits out the round trip.

Used by the Flask app, and by the FastAPI app's /pitfalls counter-example. Why httpx.Client
(measured with ``python -m benchmarks.diagnostics.client_cost``; figures in
docs/async-and-batching.md):
a sync worker waits ~50 ms on the service whatever the client, so the client's CPU cost
barely matters; httpx.Client cost less than requests.Session here, bounds its pool explicitly
(gthread workers share it between threads) and has per-phase timeouts.
"""

from __future__ import annotations

import os

import httpx

from shared_model.schemas import Patient
from shared_model.serving.features import (
    KEEPALIVE_EXPIRY_S,
    FeatureServiceBadAnswer,
    FeatureServiceTimeout,
    FeatureServiceUnavailable,
    feature_url,
    patient_from_answer,
)
from shared_model.serving.settings import Settings


class FeatureClient:
    """One connection pool per process, made on first use in that process.

    Not made with the app: under Gunicorn with preload_app the app is created in the master
    before it forks, and a gevent worker patches sockets and locks only after the fork. A pool
    made before that patching holds a real thread lock, and the first greenlets that share it
    deadlock the worker. Made lazily, the pool belongs to the process (and the patched world)
    that uses it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pools: dict[int, httpx.Client] = {}

    def fetch(self, patient_id: int) -> Patient:
        try:
            response = self._pool().get(feature_url(self._settings, patient_id))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise FeatureServiceUnavailable() from exc
        except httpx.TimeoutException as exc:  # read, write, or waiting for a pooled connection
            raise FeatureServiceTimeout(self._settings) from exc
        except httpx.HTTPError as exc:  # the connection broke mid-answer
            raise FeatureServiceBadAnswer() from exc
        return patient_from_answer(patient_id, response.status_code, response.content)

    def close(self) -> None:
        if pool := self._pools.pop(os.getpid(), None):
            pool.close()

    def _pool(self) -> httpx.Client:
        pid = os.getpid()
        if (pool := self._pools.get(pid)) is None:
            # Two threads may race here; setdefault keeps one pool, and the other, never used,
            # holds no connection.
            pool = self._pools.setdefault(pid, self._new_pool())
        return pool

    def _new_pool(self) -> httpx.Client:
        size = self._settings.feature_pool_size
        return httpx.Client(
            # httpx has no overall deadline: `read` bounds each wait for bytes. The service
            # sends its whole answer at once, so here that is the wait for the answer.
            timeout=httpx.Timeout(
                self._settings.feature_timeout_ms / 1000,
                connect=self._settings.feature_connect_timeout_ms / 1000,
            ),
            limits=httpx.Limits(
                max_connections=size,
                max_keepalive_connections=size,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
            # Proxy variables in a developer's shell must not reroute calls to this service.
            trust_env=False,
        )
