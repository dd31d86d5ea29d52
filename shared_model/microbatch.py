"""Dynamic micro-batching: concurrent single requests coalesced into one vectorized call.

A model call on 64 rows costs about what one row does, so when requests arrive together it
pays to answer them together. Callers ``await batcher.submit(item)`` one item each; a worker
task takes items off a bounded queue, runs one call of ``process_batch`` on up to
``max_size`` of them in a thread (never on the event loop), and hands each caller its own
result. It knows no web framework: plain asyncio, usable from any async server.

The rules, and where they come from (docs/async-and-batching.md compares them):

- flush when ``max_size`` items are waiting (Ray Serve's ``max_batch_size``), or when the
  oldest item has waited ``max_wait_s`` since it was submitted (Triton's
  ``max_queue_delay_microseconds``: under load the oldest has already waited out the previous
  batch, so the next one leaves at once instead of waiting again);
- one batch runs at a time: the model is CPU-bound, and a second batch in parallel would only
  fight the first for the same core while the queue fills up the next batch anyway;
- a failed batch is split in halves and each half retried, down to single items, so only the
  items that fail on their own get the error (Ray Serve and LitServe fail the whole batch);
- the queue is bounded: one item more raises QueueFull (a 503) instead of letting the wait
  grow without end (Triton's ``max_queue_size``, Ray Serve's ``max_queued_requests``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from shared_model.errors import ServiceError

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class QueueFull(ServiceError):
    status_code = 503

    def __init__(self, max_queue: int) -> None:
        super().__init__(
            f"Server busy: {max_queue} requests already wait for the model "
            "(MICROBATCH_MAX_QUEUE); try again shortly"
        )


class BatcherClosed(ServiceError):
    status_code = 503

    def __init__(self) -> None:
        super().__init__("Server is shutting down; try again shortly")


class BatchSizeMismatch(RuntimeError):
    """process_batch returned a different number of results than it was given items."""


@dataclass(eq=False)
class _Pending(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result]
    submitted_at: float


@dataclass(frozen=True)
class _Failed:
    error: Exception


@dataclass
class BatchStats:
    """What the batcher has done so far (batch sizes), for tests and for whoever logs it."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    split_retries: int = 0

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)


class MicroBatcher(Generic[Item, Result]):
    """Coalesce concurrent ``submit`` calls into calls of ``process_batch``; see the module doc.

    ``process_batch`` takes a list of items and returns one result per item, in order. Use
    the batcher as ``async with`` inside the event loop that will submit to it.
    """

    def __init__(
        self,
        process_batch: Callable[[list[Item]], Sequence[Result]],
        *,
        max_size: int,
        max_wait_s: float,
        max_queue: int,
    ) -> None:
        if max_size < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("need max_size >= 1, max_queue >= 1 and max_wait_s >= 0")
        self._process_batch = process_batch
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[Item, Result]] = asyncio.Queue(maxsize=max_queue)
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._gathering: asyncio.Timeout | None = None  # the wait for company, while it runs
        # One thread: batches run one at a time, off the event loop (see the module doc).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="microbatch")

    async def __aenter__(self) -> Self:
        self._worker = asyncio.create_task(self._run(), name="microbatch-worker")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def submit(self, item: Item) -> Result:
        """This item's own result, computed in a batch with whatever else is waiting."""
        if self._worker is None or self._worker.done():
            raise RuntimeError("MicroBatcher is used outside `async with`")
        if self._closing:
            raise BatcherClosed()
        loop = asyncio.get_running_loop()
        pending = _Pending(item, loop.create_future(), loop.time())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise QueueFull(self.max_queue) from None
        # If this caller is cancelled (its client went away), so is the future, and the
        # worker skips the item instead of computing an answer nobody will read.
        return await pending.future

    async def close(self) -> None:
        """Finish what was submitted, then stop the worker and its thread."""
        self._closing = True
        if self._gathering is not None:  # stop waiting for company: flush what is there now
            self._gathering.reschedule(asyncio.get_running_loop().time())
        if self._worker is not None and not self._worker.done():
            await self._queue.join()
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            live = [pending for pending in batch if not pending.future.done()]
            try:
                if live:
                    items = [pending.item for pending in live]
                    self.stats.record(len(items))
                    outcomes = await loop.run_in_executor(self._executor, self._isolate, items)
                    for pending, outcome in zip(live, outcomes, strict=True):
                        _settle(pending.future, outcome)
            except Exception as exc:  # a bug here must not strand the callers or kill the worker
                log.exception("micro-batch worker failed; failing its batch")
                for pending in live:
                    _settle(pending.future, _Failed(exc))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _next_batch(self) -> list[_Pending[Item, Result]]:
        """Wait for one item, then gather more until max_size or the oldest item's deadline."""
        batch = [await self._queue.get()]
        deadline = batch[0].submitted_at + self.max_wait_s
        loop = asyncio.get_running_loop()
        while len(batch) < self.max_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                break
            try:
                async with asyncio.timeout(remaining) as self._gathering:
                    batch.append(await self._queue.get())
            except TimeoutError:
                break  # a cancelled get() leaves its item in the queue: nothing is lost
            finally:
                self._gathering = None
        return batch

    def _isolate(self, items: list[Item]) -> list[Result | _Failed]:
        """process_batch on all items; if it raises, on each half, down to single items.

        Runs in the batcher's thread. One bad item in 64 costs about 2 x log2(64) = 12 extra
        calls rather than 64, and the other 63 callers still get their results.
        """
        try:
            results = list(self._process_batch(items))
            if len(results) != len(items):
                raise BatchSizeMismatch(f"{len(items)} items gave {len(results)} results")
            return results
        except Exception as exc:
            if len(items) == 1:
                return [_Failed(exc)]
            self.stats.split_retries += 1
            log.warning("a batch of %d failed (%r); retrying it in halves", len(items), exc)
            middle = len(items) // 2
            return self._isolate(items[:middle]) + self._isolate(items[middle:])


def _settle(future: asyncio.Future[Result], outcome: Result | _Failed) -> None:
    if future.done():  # the caller was cancelled while its batch ran
        return
    if isinstance(outcome, _Failed):
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome)
