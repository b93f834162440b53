"""Decoding a request's pictures under a memory budget shared by every request in flight.

A picture's decoded size is known from its header (width x height x bands bytes) before a pixel
is decoded. A request reserves the sum of its pictures' sizes from one :class:`DecodeBudget`
(``--max-decoded-mb``) and decodes only when it fits beside what other requests are decoding,
so eight 64-megapixel PNGs sent at once cost what the budget allows, not eight times their
pixels. A request whose own pictures exceed the whole budget is refused (413); one that waits
for room waits within its ``--timeout`` (then 503). The reservation is returned when the decoding
thread ends, even when the request has already timed out, since the thread still holds the pixels.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from committee.data.user_images import decoded_bytes
from committee.serving.http_inputs import BadRequest, InputRules, decode_picture

# After a large picture is freed, glibc keeps the memory for reuse (its mmap threshold has grown
# to the picture's block size); trimming returns it to the system, so an idle service shrinks again.
TRIM_AFTER_BYTES = 64 << 20


class DecodeBudget:
    """Decoded bytes in flight across requests, at most ``limit``; waiting is FIFO-fair enough (a Condition)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.condition = asyncio.Condition()

    async def acquire(self, need: int) -> None:
        """Wait until ``need`` bytes fit beside the requests decoding now, then hold them."""
        if need > self.limit:
            raise BadRequest(
                413,
                f"the pictures decode to {need / (1 << 20):,.0f} MB, over the service's budget of "
                f"{self.limit / (1 << 20):,.0f} MB (--max-decoded-mb)",
            )
        async with self.condition:
            await self.condition.wait_for(lambda: self.used + need <= self.limit)
            self.used += need
            self.peak = max(self.peak, self.used)

    async def release(self, need: int) -> None:
        async with self.condition:
            self.used -= need
            self.condition.notify_all()


def trim_memory() -> None:
    """glibc's malloc_trim(0) where there is one (elsewhere nothing: other allocators return memory themselves)."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


async def decode_within_budget(
    files: list[tuple[str, bytes]], rules: InputRules, budget: DecodeBudget, pool: ThreadPoolExecutor
) -> np.ndarray:
    """uint8 images ``(N, ...)`` from ``(name, encoded bytes)`` pairs, decoded in ``pool`` once the
    budget holds their declared size."""
    need = sum(decoded_bytes(data) for _, data in files)
    await budget.acquire(need)
    loop = asyncio.get_running_loop()

    def returned(_: Future) -> None:  # in the decoding thread, or here when it was cancelled before starting
        if not loop.is_closed():  # a server shutting down has no budget left to return to
            asyncio.run_coroutine_threadsafe(budget.release(need), loop)
        if need >= TRIM_AFTER_BYTES:
            trim_memory()

    try:
        job = pool.submit(lambda: np.stack([decode_picture(data, name, rules) for name, data in files]))
    except BaseException:
        await budget.release(need)
        raise
    job.add_done_callback(returned)
    return await asyncio.wrap_future(job)


class Decoder:
    """A service's picture decoding: its threads and its budget. Called with ``(name, bytes)`` pairs;
    :meth:`start` on the server's event loop (the budget's Condition belongs to it), :meth:`stop` at the end."""

    def __init__(self, rules: InputRules, max_decoded_bytes: int):
        self.rules, self.limit = rules, max_decoded_bytes
        # All of a request's pictures in one trip to a decoding thread (a trip each costs more than a small PNG).
        self.pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="decode")
        self.budget: DecodeBudget | None = None

    def start(self) -> None:
        self.budget = DecodeBudget(self.limit)

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, files: list[tuple[str, bytes]]) -> np.ndarray:
        return await decode_within_budget(files, self.rules, self.budget, self.pool)
