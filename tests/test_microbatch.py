"""The micro-batcher on its own: ordering, isolation, the bounded queue, both flush rules, and
both ways to wait (a thread blocking, a coroutine awaiting).

No server. Nothing here asserts a duration; the waits that guard against a hang are far longer
than anything should take.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import Any

import pytest

from shared_model.predictor import Predictor
from shared_model.schemas import Patient
from shared_model.serving.microbatch import (
    BatcherClosed,
    BatchSizeMismatch,
    MicroBatcher,
    QueueFull,
)

HANG_GUARD_S = 30  # only a batcher that never flushes gets near this


class Recorder:
    """A process_batch that records each batch it is given and answers item * 10."""

    def __init__(self, fail_on: int | None = None, short_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.short_on = short_on

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if self.fail_on in items:
            raise ValueError(f"cannot do {self.fail_on}")
        results = [item * 10 for item in items]
        return results[:-1] if self.short_on in items else results


class Gate:
    """A process_batch that holds each call until released, to fill the queue behind it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.entered.set()
        assert self.release.wait(HANG_GUARD_S)
        return [item * 10 for item in items]


@contextmanager
def batcher(process: Callable[[list[int]], list[int]], **options: Any) -> Iterator[MicroBatcher]:
    settings = {"max_size": 8, "max_wait_s": 0.001, "max_queue": 100, **options}
    b: MicroBatcher[int, int] = MicroBatcher(process, **settings)
    try:
        yield b
    finally:
        b.close()


def submit_held(b: MicroBatcher[int, int], gate: Gate, items: range) -> list[Future[int]]:
    """Submit items while the model is held on a first item, so they all wait together."""
    first = b.submit(-1)
    assert gate.entered.wait(HANG_GUARD_S)
    futures = [b.submit(i) for i in items]
    gate.release.set()
    assert first.result(HANG_GUARD_S) == -10
    return futures


def results(futures: list[Future[int]]) -> list[int | BaseException]:
    done, _ = wait(futures, timeout=HANG_GUARD_S)
    assert len(done) == len(futures)
    return [f.exception() or f.result() for f in futures]


def test_each_caller_gets_its_own_result_and_batches_keep_arrival_order() -> None:
    gate = Gate()
    with batcher(gate, max_size=8) as b:
        futures = submit_held(b, gate, range(20))
        assert results(futures) == [i * 10 for i in range(20)]
    assert [item for batch in gate.batches[1:] for item in batch] == list(range(20))
    assert [len(batch) for batch in gate.batches[1:]] == [8, 8, 4]
    assert b.stats.items == 21 and b.stats.batches == len(gate.batches)


def test_callers_in_threads_each_get_their_own_result() -> None:
    with batcher(Recorder(), max_size=8) as b:
        answers: dict[int, int] = {}
        threads = [
            threading.Thread(target=lambda i=i: answers.__setitem__(i, b.result_for(i)))
            for i in range(32)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_GUARD_S)
    assert answers == {i: i * 10 for i in range(32)}


def test_a_full_batch_leaves_without_waiting_for_max_wait() -> None:
    recorder = Recorder()
    # An hour's max wait: only the size rule can make these batches leave.
    with batcher(recorder, max_size=4, max_wait_s=3600) as b:
        assert results([b.submit(i) for i in range(8)]) == [i * 10 for i in range(8)]
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_a_partial_batch_leaves_when_its_oldest_item_has_waited_max_wait() -> None:
    recorder = Recorder()
    # Room for 100, only 3 come: the wait rule alone makes the batch leave.
    with batcher(recorder, max_size=100, max_wait_s=0.05) as b:
        assert results([b.submit(i) for i in range(3)]) == [0, 10, 20]
        assert recorder.batches == [[0, 1, 2]]


def test_zero_max_wait_takes_whatever_is_already_waiting() -> None:
    gate = Gate()
    with batcher(gate, max_size=8, max_wait_s=0) as b:
        futures = submit_held(b, gate, range(5))
        assert results(futures) == [0, 10, 20, 30, 40]
    assert gate.batches == [[-1], [0, 1, 2, 3, 4]]


def test_a_failing_item_fails_alone_and_its_batch_neighbours_still_get_results() -> None:
    recorder = Recorder(fail_on=13)
    with batcher(recorder, max_size=16, max_wait_s=3600) as b:
        outcomes = results([b.submit(i) for i in range(16)])
    assert isinstance(outcomes[13], ValueError)
    assert [o for i, o in enumerate(outcomes) if i != 13] == [i * 10 for i in range(16) if i != 13]
    assert b.stats.split_retries > 0
    # Halving, not one call per item: 1 + 2 x log2(16) calls in all.
    assert len(recorder.batches) == 1 + 2 * 4


def test_a_batch_answered_with_the_wrong_number_of_results_fails_only_the_culprit() -> None:
    recorder = Recorder(short_on=5)
    with batcher(recorder, max_size=8, max_wait_s=3600) as b:
        outcomes = results([b.submit(i) for i in range(8)])
    assert isinstance(outcomes[5], BatchSizeMismatch)
    assert [o for i, o in enumerate(outcomes) if i != 5] == [i * 10 for i in range(8) if i != 5]


def test_a_full_queue_refuses_at_once_with_503_and_the_queued_requests_still_finish() -> None:
    gate = Gate()
    with batcher(gate, max_size=1, max_queue=2) as b:
        running = b.submit(0)
        assert gate.entered.wait(HANG_GUARD_S)  # item 0 is in the model; the queue is empty
        queued = [b.submit(i) for i in (1, 2)]
        with pytest.raises(QueueFull) as refused:
            b.submit(3)
        gate.release.set()
        assert results([running, *queued]) == [0, 10, 20]
    assert refused.value.status_code == 503
    assert "MICROBATCH_MAX_QUEUE" in refused.value.detail


def test_a_caller_that_went_away_is_not_computed() -> None:
    gate = Gate()

    async def scenario(b: MicroBatcher[int, int]) -> None:
        first = asyncio.create_task(b.result_for_async(0))
        await asyncio.to_thread(gate.entered.wait, HANG_GUARD_S)
        abandoned = asyncio.create_task(b.result_for_async(1))
        await asyncio.sleep(0)
        abandoned.cancel()  # as when the client disconnects
        await asyncio.sleep(0)
        gate.release.set()
        assert await first == 0

    with batcher(gate, max_size=1) as b:
        asyncio.run(scenario(b))
    assert gate.batches == [[0]]


def test_a_coroutine_awaits_its_result_while_the_loop_serves_others() -> None:
    async def scenario(b: MicroBatcher[int, int]) -> list[int]:
        return await asyncio.gather(*(b.result_for_async(i) for i in range(20)))

    with batcher(Recorder(), max_size=8) as b:
        assert asyncio.run(scenario(b)) == [i * 10 for i in range(20)]


def test_closing_finishes_what_was_submitted_and_then_refuses() -> None:
    recorder = Recorder()
    with batcher(recorder, max_size=2, max_wait_s=3600) as b:
        pending = [b.submit(i) for i in range(5)]
    # Closed with item 4 alone in a batch that would wait an hour: close still runs it.
    assert results(pending) == [0, 10, 20, 30, 40]
    with pytest.raises(BatcherClosed):
        b.submit(5)


def test_predict_each_answers_each_patient_like_predict(predictor: Predictor) -> None:
    from shared_model.data import held_out_patients

    patients = [Patient.model_validate(body) for body in held_out_patients()[:5]]
    each = predictor.responses_for(patients)
    batch = predictor.batch_response_for(patients)
    assert [answer.prediction for answer in each] == batch.predictions
    assert [answer.warnings for answer in each] == batch.warnings
    assert predictor.responses_for(patients[:1]) == [predictor.response_for(patients[0])]
