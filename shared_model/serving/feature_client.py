"""The blocking client for the feature service: the calling thread waits out the round trip.

httpx.Client: a bounded pool that gthread threads share, and per-phase timeouts.
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
    """One connection pool per process, made on first use: one made before gevent patches a
    forked worker would hold a real thread lock and deadlock it."""

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
            # Two threads may race: setdefault keeps one pool; the other never holds a connection.
            pool = self._pools.setdefault(pid, self._new_pool())
        return pool

    def _new_pool(self) -> httpx.Client:
        size = self._settings.feature_pool_size
        return httpx.Client(
            # httpx has no overall deadline: `read` bounds the wait for the one-piece answer.
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
