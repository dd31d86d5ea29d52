"""The micro-batcher on its own: ordering, isolation, the bounded queue, and both flush rules.

Plain asyncio, no server: each test runs its own event loop. Nothing here asserts a duration;
the waits that guard against a hang are far longer than anything should take.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from shared_model.microbatch import BatchSizeMismatch, MicroBatcher, QueueFull
from shared_model.predictor import Predictor
from shared_model.schemas import Patient

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


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def guarded() -> None:
        async with asyncio.timeout(HANG_GUARD_S):
            await test()

    asyncio.run(guarded())


def batcher(process: Callable[[list[int]], list[int]], **options: Any) -> MicroBatcher[int, int]:
    settings = {"max_size": 8, "max_wait_s": 0.001, "max_queue": 100, **options}
    return MicroBatcher(process, **settings)


def test_each_caller_gets_its_own_result_and_batches_keep_arrival_order() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        async with batcher(recorder, max_size=8) as b:
            results = await asyncio.gather(*(b.submit(i) for i in range(20)))
        assert results == [i * 10 for i in range(20)]
        assert [item for batch in recorder.batches for item in batch] == list(range(20))
        assert max(len(batch) for batch in recorder.batches) == 8
        assert b.stats.items == 20 and b.stats.batches == len(recorder.batches)

    run(scenario)


def test_a_full_batch_leaves_without_waiting_for_max_wait() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        # An hour's max wait: only the size rule can make these batches leave.
        async with batcher(recorder, max_size=4, max_wait_s=3600) as b:
            results = await asyncio.gather(*(b.submit(i) for i in range(8)))
        assert results == [i * 10 for i in range(8)]
        assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]

    run(scenario)


def test_a_partial_batch_leaves_when_its_oldest_item_has_waited_max_wait() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        # Room for 100, only 3 come: the wait rule alone makes the batch leave.
        async with batcher(recorder, max_size=100, max_wait_s=0.01) as b:
            assert await asyncio.gather(*(b.submit(i) for i in range(3))) == [0, 10, 20]
        assert recorder.batches == [[0, 1, 2]]

    run(scenario)


def test_zero_max_wait_takes_whatever_is_already_waiting() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        async with batcher(recorder, max_size=8, max_wait_s=0) as b:
            assert await asyncio.gather(*(b.submit(i) for i in range(5))) == [0, 10, 20, 30, 40]
        assert [item for batch in recorder.batches for item in batch] == [0, 1, 2, 3, 4]

    run(scenario)


def test_a_failing_item_fails_alone_and_its_batch_neighbours_still_get_results() -> None:
    recorder = Recorder(fail_on=13)

    async def scenario() -> None:
        async with batcher(recorder, max_size=16, max_wait_s=3600) as b:
            outcomes = await asyncio.gather(
                *(b.submit(i) for i in range(16)), return_exceptions=True
            )
        assert isinstance(outcomes[13], ValueError)
        assert [o for i, o in enumerate(outcomes) if i != 13] == [
            i * 10 for i in range(16) if i != 13
        ]
        assert b.stats.split_retries > 0
        # Halving, not one call per item: 1 + 2 x log2(16) calls in all.
        assert len(recorder.batches) == 1 + 2 * 4

    run(scenario)


def test_a_batch_answered_with_the_wrong_number_of_results_fails_only_the_culprit() -> None:
    recorder = Recorder(short_on=5)

    async def scenario() -> None:
        async with batcher(recorder, max_size=8, max_wait_s=3600) as b:
            outcomes = await asyncio.gather(
                *(b.submit(i) for i in range(8)), return_exceptions=True
            )
        assert isinstance(outcomes[5], BatchSizeMismatch)
        assert [o for i, o in enumerate(outcomes) if i != 5] == [i * 10 for i in range(8) if i != 5]

    run(scenario)


class Gate:
    """A process_batch that holds its first call until released, to fill the queue behind it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.entered.set()
        self.release.wait(HANG_GUARD_S)
        return [item * 10 for item in items]

    async def wait_entered(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.entered.wait, HANG_GUARD_S)


def test_a_full_queue_refuses_at_once_with_503_and_the_queued_requests_still_finish() -> None:
    gate = Gate()

    async def scenario() -> None:
        async with batcher(gate, max_size=1, max_queue=2) as b:
            running = asyncio.create_task(b.submit(0))
            await gate.wait_entered()  # item 0 is in the model; the queue is empty
            queued = [asyncio.create_task(b.submit(i)) for i in (1, 2)]
            await asyncio.sleep(0)  # let both reach the queue
            with pytest.raises(QueueFull) as refused:
                await b.submit(3)
            gate.release.set()
            assert await asyncio.gather(running, *queued) == [0, 10, 20]
        assert refused.value.status_code == 503
        assert "MICROBATCH_MAX_QUEUE" in refused.value.detail

    run(scenario)


def test_a_caller_that_went_away_is_not_computed() -> None:
    gate = Gate()

    async def scenario() -> None:
        async with batcher(gate, max_size=1) as b:
            first = asyncio.create_task(b.submit(0))
            await gate.wait_entered()
            abandoned = asyncio.create_task(b.submit(1))
            await asyncio.sleep(0)
            abandoned.cancel()
            gate.release.set()
            assert await first == 0
        assert gate.batches == [[0]]

    run(scenario)


def test_closing_finishes_what_was_submitted() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        b = batcher(recorder, max_size=2, max_wait_s=3600)
        async with b:
            pending = [asyncio.create_task(b.submit(i)) for i in range(5)]
            await asyncio.sleep(0)
        # Closed with item 4 alone in a batch that would wait an hour: close still runs it.
        assert [await task for task in pending] == [0, 10, 20, 30, 40]

    run(scenario)


def test_submitting_outside_the_context_is_an_error() -> None:
    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="async with"):
            await batcher(Recorder()).submit(1)

    run(scenario)


def test_predict_each_answers_each_patient_like_predict(predictor: Predictor) -> None:
    from shared_model.data import held_out_patients

    patients = [Patient.model_validate(body) for body in held_out_patients()[:5]]
    each = predictor.predict_each(patients)
    batch = predictor.predict_batch(patients)
    assert [answer.prediction for answer in each] == batch.predictions
    assert [answer.warnings for answer in each] == batch.warnings
    assert predictor.predict_each(patients[:1]) == [predictor.predict(patients[0])]
