"""Dynamic micro-batching: concurrent single requests coalesced into one vectorized call.

One batching thread runs the calls; a caller waits in a thread (``batcher.result_for(item)``)
or awaits without holding one (``await batcher.result_for_async(item)``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from shared_model.serving.errors import ServiceError

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
    future: Future[Result]
    submitted_at: float


@dataclass(frozen=True)
class _Failed:
    error: Exception


_STOP = object()  # put on the queue by close(): finish what is queued, then end the thread


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
    """Coalesce concurrent ``submit`` calls into calls of ``process_batch`` (one result per item).

    Its thread starts on the first submit in each process, so every forked worker has its own.
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
        self._closing = False
        self._start_lock = threading.Lock()
        self._owner_pid = 0  # the process whose thread and queue these are
        self._queue: queue.Queue[_Pending[Item, Result] | object] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, item: Item) -> Future[Result]:
        """A future for this item's own result, computed with whatever else is waiting."""
        if self._closing:
            raise BatcherClosed()
        if self._owner_pid != os.getpid():
            self._start()
        # Counted without a lock: a few items over max_queue in a race is harmless.
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull(self.max_queue)
        pending = _Pending(item, Future(), time.monotonic())
        self._queue.put(pending)
        return pending.future

    def result_for(self, item: Item) -> Result:
        """This item's result, the calling thread waiting for its batch."""
        return self.submit(item).result()

    async def result_for_async(self, item: Item) -> Result:
        """This item's result, awaited: the event loop serves others meanwhile. If the caller
        is cancelled (its client went away), the item is skipped unless it is already running."""
        return await asyncio.wrap_future(self.submit(item))

    def close(self) -> None:
        """Finish what was submitted, then stop the batching thread (blocks until it has)."""
        self._closing = True
        if self._thread is not None and self._owner_pid == os.getpid():
            self._queue.put(_STOP)
            self._thread.join()

    def _start(self) -> None:
        with self._start_lock:
            if self._owner_pid == os.getpid():
                return
            # A fresh queue and thread: after a fork, the parent's thread does not exist here.
            self._queue = queue.Queue()
            self._thread = threading.Thread(target=self._run, name="microbatch", daemon=True)
            self._thread.start()
            self._owner_pid = os.getpid()

    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            # A future the caller cancelled while it waited is skipped, not computed.
            live = [pending for pending in batch if pending.future.set_running_or_notify_cancel()]
            if live:
                try:
                    items = [pending.item for pending in live]
                    self.stats.record(len(items))
                    outcomes = self._isolate(items)
                except Exception as exc:  # a bug here must not strand the callers
                    log.exception("micro-batch failed; failing its batch")
                    outcomes = [_Failed(exc)] * len(live)
                for pending, outcome in zip(live, outcomes, strict=True):
                    if isinstance(outcome, _Failed):
                        pending.future.set_exception(outcome.error)
                    else:
                        pending.future.set_result(outcome)
            if stop:
                return

    def _next_batch(self) -> tuple[list[_Pending[Item, Result]], bool]:
        """Wait for one item, then gather more until max_size or the oldest item's deadline.

        Also says whether close() asked the thread to stop after this batch.
        """
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[_Pending[Item, Result]] = [first]  # type: ignore[list-item]
        deadline = batch[0].submitted_at + self.max_wait_s
        while len(batch) < self.max_size:
            try:
                following = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    following = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if following is _STOP:
                return batch, True
            batch.append(following)  # type: ignore[arg-type]
        return batch, False

    def _isolate(self, items: list[Item]) -> list[Result | _Failed]:
        """process_batch on all items; if it raises, on each half, so only the bad items fail."""
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
