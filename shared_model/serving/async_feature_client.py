"""The async client for the feature service: a waiting request holds no thread, only a task.

aiohttp, because it spent the least CPU per request (benchmarks/diagnostics/client_cost.py).
"""

from __future__ import annotations

from typing import Self

import aiohttp

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


class AsyncFeatureClient:
    """One aiohttp session (one connection pool) for the life of an event loop.

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
            # `total` bounds the exchange, pool wait included; `sock_connect` the connect alone.
            timeout=aiohttp.ClientTimeout(
                total=self._settings.feature_timeout_ms / 1000,
                sock_connect=self._settings.feature_connect_timeout_ms / 1000,
            ),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
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
