"""FastAPI's model runner: predictions wait for MODEL_THREADS threads, in arrival order, and
MAX_IN_FLIGHT's default is the Little's-law product docs/overload.md explains."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

import pytest

from benchmarks.reports.rows import read_rows
from fastapi_app.deps import ModelRunner
from shared_model.serving.model import ServedModel
from shared_model.serving.settings import (
    ASSUMED_CAPACITY_RPS,
    DEFAULT_MAX_IN_FLIGHT,
    PROMISED_LATENCY_S,
    Settings,
)
from tools.doc_includes import DOCS


class SlowModel:
    """Stands in for ServedModel: each prediction takes 20 ms and records who ran when."""

    batcher = None

    def __init__(self) -> None:
        self.running = self.most_at_once = 0
        self.finished: list[Any] = []
        self.lock = threading.Lock()

    def response_for(self, patient: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
            self.finished.append(patient)
        return patient


@pytest.mark.parametrize("threads", [1, 3])
def test_the_model_runs_in_at_most_model_threads_threads_in_arrival_order(threads: int) -> None:
    model = SlowModel()
    runner = ModelRunner(cast(ServedModel, model), threads)

    async def flood() -> list[Any]:
        return await asyncio.gather(*(runner.response_for(i) for i in range(12)))

    assert asyncio.run(flood()) == list(range(12))
    assert 1 <= model.most_at_once <= threads
    if threads == 1:
        assert model.finished == list(range(12)), "one thread serves them first come, first served"


def test_max_in_flight_defaults_to_capacity_times_promised_latency() -> None:
    # The declared defaults, whatever this machine's environment or .env sets.
    defaults = Settings.model_fields
    assert defaults["max_in_flight"].default == DEFAULT_MAX_IN_FLIGHT
    assert round(ASSUMED_CAPACITY_RPS * PROMISED_LATENCY_S) == DEFAULT_MAX_IN_FLIGHT
    assert defaults["model_threads"].default == 1


def test_the_overload_lesson_quotes_the_sizing_in_force() -> None:
    page = (DOCS / "overload.md").read_text()
    assert f"ASSUMED_CAPACITY_RPS = {ASSUMED_CAPACITY_RPS}" in page
    assert f"PROMISED_LATENCY_S = {PROMISED_LATENCY_S}" in page
    assert f"`MAX_IN_FLIGHT` is {DEFAULT_MAX_IN_FLIGHT} per worker" in page


def test_the_assumed_capacity_sits_below_every_committed_one_worker_rate() -> None:
    # The lesson says so: every round of one plain lab worker on the light model, 64 users.
    rates = [
        float(row["rps"])
        for run in (DOCS.parent / "benchmarks" / "results").glob("*/results.csv")
        for row in read_rows(run.parent)
        if row["kind"] == "lab"
        and row["model"] == "default"
        and row["scenario"] == "single"
        and row["users"] == "64"
        and row["workers"] == "1"
        and row["status"] == "ok"
        and "+microbatching" not in row["config"]
    ]
    assert rates and min(rates) > ASSUMED_CAPACITY_RPS


def test_a_request_cancelled_while_it_waits_for_the_model_is_never_computed() -> None:
    model = SlowModel()
    runner = ModelRunner(cast(ServedModel, model), 1)

    async def one_leaves() -> None:
        first = asyncio.ensure_future(runner.response_for("first"))
        leaving = asyncio.ensure_future(runner.response_for("leaving"))
        last = asyncio.ensure_future(runner.response_for("last"))
        await asyncio.sleep(0.005)  # all three handed over; "first" is running
        leaving.cancel()  # its client went away
        await asyncio.gather(first, last)

    asyncio.run(one_leaves())
    runner.threads.shutdown()
    assert model.finished == ["first", "last"]
