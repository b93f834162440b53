"""Micro-batching: concurrent requests gathered into one forward pass.

A committee runs K networks per batch; one image at a time wastes most of each forward pass on
overhead. Requests wait in a queue; one worker takes what has arrived, up to ``max_batch`` images
or ``max_wait_ms`` after the first, runs the committee once on the whole batch in a worker thread
(the event loop keeps accepting requests), and hands each request its own rows back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np


@dataclass
class BatchStats:
    """What the batcher has done, for ``GET /v1/model`` and the load benchmark."""

    batches: int = 0
    images: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)  # the last 1,000 batch sizes

    def add(self, n: int) -> None:
        self.batches += 1
        self.images += n
        self.largest = max(self.largest, n)
        self.sizes = [*self.sizes[-999:], n]


class MicroBatcher:
    """``await batcher.predict(images)`` from many coroutines; ``run_batch(images)`` sees them together.

    ``run_batch``: uint8 ``(B, ...)`` -> an object with ``.rows(start, stop)`` (a
    :class:`~committee.serving.trained.Prediction`). A request larger than ``max_batch`` runs alone.
    """

    def __init__(self, run_batch: Callable, max_batch: int = 64, max_wait_ms: float = 5.0):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.stats = BatchStats()
        self.queue: asyncio.Queue | None = None
        self.carry: tuple | None = None  # a request that did not fit the last batch: first in the next
        self.worker: asyncio.Task | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="committee-batch")

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self.serve_forever())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def predict(self, images: np.ndarray):
        """This request's predictions, computed together with whatever else is waiting."""
        done = asyncio.get_running_loop().create_future()
        await self.queue.put((images, done))
        return await done

    async def gather(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        """The next batch: the first waiting request, then more until full or the wait is over."""
        batch = [self.carry or await self.queue.get()]
        self.carry = None
        count = len(batch[0][0])
        deadline = time.monotonic() + self.max_wait
        while count < self.max_batch:
            if self.queue.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
            else:
                item = self.queue.get_nowait()
            if count + len(item[0]) > self.max_batch:
                self.carry = item  # first in the next batch: requests keep their order
                break
            batch.append(item)
            count += len(item[0])
        return batch

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self.gather()
            waiting = [(x, f) for x, f in batch if not f.done()]  # a request that timed out is dropped
            if not waiting:
                continue
            images = np.concatenate([x for x, _ in waiting])
            try:
                pred = await loop.run_in_executor(self.pool, self.run_batch, images)
            except Exception as exc:  # one bad batch fails its requests, not the server
                for _, f in waiting:
                    if not f.done():
                        f.set_exception(exc)
                continue
            self.stats.add(len(images))
            start = 0
            for x, f in waiting:
                if not f.done():
                    f.set_result(pred.rows(start, start + len(x)))
                start += len(x)
