"""Two clients for the feature service, one blocking and one async, each with one connection pool.

The apps only open, call and close them; what a failure means is decided once, in
shared_model.features. Why these two libraries (measured with ``python -m
benchmarks.client_cost``; figures and method in docs/async-and-batching.md):

- blocking, httpx.Client: a sync worker waits ~50 ms on the service either way, so the client's
  CPU cost barely matters; httpx.Client cost less than requests.Session here, bounds its pool
  explicitly (gthread workers share it between threads) and has per-phase timeouts.
- async, aiohttp.ClientSession: with 64 requests in flight httpx.AsyncClient spent over twenty
  times the CPU per request that aiohttp did, and on one core that cost caps the route.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp
import httpx

from shared_model.features import (
    FeatureServiceBadAnswer,
    FeatureServiceTimeout,
    FeatureServiceUnavailable,
    feature_url,
    patient_from_answer,
)
from shared_model.schemas import Patient
from shared_model.settings import Settings

# Idle connections are dropped after this long: shorter than the keep-alive of the servers
# they talk to (Uvicorn's is 5 s), so a client never reuses a connection the server is closing.
KEEPALIVE_EXPIRY_S = 4.0


class FeatureClient:
    """Blocking: the calling thread waits out the round trip. For Flask, and /pitfalls."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        pool = settings.feature_pool_size
        self._http = httpx.Client(
            # httpx has no overall deadline: `read` bounds each wait for bytes. The service
            # sends its whole answer at once, so here that is the wait for the answer.
            timeout=httpx.Timeout(
                settings.feature_timeout_ms / 1000,
                connect=settings.feature_connect_timeout_ms / 1000,
            ),
            limits=httpx.Limits(
                max_connections=pool,
                max_keepalive_connections=pool,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
            # Proxy variables in a developer's shell must not reroute calls to this service.
            trust_env=False,
        )

    def fetch(self, patient_id: int) -> Patient:
        try:
            response = self._http.get(feature_url(self._settings, patient_id))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise FeatureServiceUnavailable() from exc
        except httpx.TimeoutException as exc:  # read, write, or waiting for a pooled connection
            raise FeatureServiceTimeout(self._settings) from exc
        except httpx.HTTPError as exc:  # the connection broke mid-answer
            raise FeatureServiceBadAnswer() from exc
        return patient_from_answer(patient_id, response.status_code, response.content)

    def close(self) -> None:
        self._http.close()


class AsyncFeatureClient:
    """Async: a waiting request holds no thread, only a place on the event loop.

    Use it as ``async with``, inside the loop that will run the requests (FastAPI's lifespan):
    an aiohttp session belongs to the loop it was made in.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._settings.feature_pool_size, keepalive_timeout=KEEPALIVE_EXPIRY_S
            ),
            # `total` is a real deadline for the whole exchange, waiting for a pooled
            # connection included; `sock_connect` bounds the TCP connect alone.
            timeout=aiohttp.ClientTimeout(
                total=self._settings.feature_timeout_ms / 1000,
                sock_connect=self._settings.feature_connect_timeout_ms / 1000,
            ),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(self, patient_id: int) -> Patient:
        if self._session is None:
            raise RuntimeError("AsyncFeatureClient is used outside `async with`")
        try:
            async with self._session.get(feature_url(self._settings, patient_id)) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise FeatureServiceUnavailable() from exc
        except TimeoutError as exc:
            raise FeatureServiceTimeout(self._settings) from exc
        except aiohttp.ClientError as exc:  # the connection broke mid-answer
            raise FeatureServiceBadAnswer() from exc
        return patient_from_answer(patient_id, status, body)
