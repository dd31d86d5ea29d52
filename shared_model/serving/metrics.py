"""Prometheus metrics, shared by both apps so both report alike.

With PROMETHEUS_MULTIPROC_DIR set, a scrape of any worker sums every worker's samples.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "http_requests_total",
    "Requests answered, by route template, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request to response, by route template",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PREDICTIONS = Histogram(
    "model_prediction",
    "Predicted disease progression (the target's scale is 25 to 346)",
    buckets=(25, 50, 75, 100, 125, 150, 175, 200, 225, 250, 275, 300, 350),
)
# An info metric as a gauge: prometheus_client's Info does not work across processes.
MODEL_INFO = Gauge(
    "model_info",
    "The model being served: 1 while a process serves this version, 0 once it was replaced",
    ["model_version", "name"],
    multiprocess_mode="max",
)

UNMATCHED_ROUTE = "<unmatched>"


# Label values from a fixed set: each new one is a time series kept for the server's life.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


@functools.lru_cache(maxsize=4096)
def _request_series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    # Looked up once per combination: `.labels()` checks and locks on every call.
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method)


def observe(route: str, method: str, status: int, seconds: float) -> None:
    requests, latency = _request_series(
        route, method if method in KNOWN_METHODS else OTHER_METHOD, status
    )
    requests.inc()
    latency.observe(seconds)


def observe_predictions(values: Sequence[float]) -> None:
    for value in values:
        PREDICTIONS.observe(value)


def set_model_info(model_version: str, name: str, replaces: tuple[str, str] | None = None) -> None:
    """This version is served now; `replaces`, the (version, name) it took over from."""
    if replaces is not None:
        MODEL_INFO.labels(*replaces).set(0)
    MODEL_INFO.labels(model_version, name).set(1)


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text for a scrape, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
