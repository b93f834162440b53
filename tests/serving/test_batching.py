"""Micro-batching: concurrent requests share forward passes, and each gets its own rows back."""

import asyncio

import numpy as np

from committee.serving.batching import MicroBatcher


class Rows:
    def __init__(self, x):
        self.x = x

    def rows(self, start, stop):
        return self.x[start:stop]


def test_concurrent_requests_are_gathered_and_answered_in_order():
    seen = []

    def run_batch(images):
        seen.append(len(images))
        return Rows(images * 2)

    async def main():
        batcher = MicroBatcher(run_batch, max_batch=8, max_wait_ms=50)
        await batcher.start()
        requests = [np.full((1 + i % 3, 2), i) for i in range(12)]  # 1-3 images each, 24 in all
        answers = await asyncio.gather(*(batcher.predict(r) for r in requests))
        big = await batcher.predict(np.ones((20, 2)))  # larger than a batch: runs alone
        await batcher.stop()
        return requests, answers, big, batcher.stats

    requests, answers, big, stats = asyncio.run(main())
    for r, a in zip(requests, answers):
        np.testing.assert_array_equal(a, r * 2)  # every request gets exactly its own rows
    assert len(big) == 20 and seen[-1] == 20
    assert max(seen[:-1]) <= 8 and len(seen) - 1 < 12  # gathered: fewer passes than requests
    assert stats.images == 44 and stats.batches == len(seen)


def test_a_lone_request_waits_no_longer_than_max_wait():
    async def main():
        batcher = MicroBatcher(lambda x: Rows(x), max_batch=64, max_wait_ms=20)
        await batcher.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.predict(np.zeros((1, 2)))
        took = loop.time() - start
        await batcher.stop()
        return took

    assert asyncio.run(main()) < 0.5
