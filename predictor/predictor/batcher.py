"""Runs ``session.run`` off the event loop, merging requests that wait at the same time.

Requests are queued for one (or a few) inference threads. A thread that finds several
requests waiting with the same requested outputs concatenates their rows into one
``session.run`` call and splits the results: no timer, no added latency, just fewer thread
hand-offs and fewer runs under concurrency (what MLServer calls adaptive batching, without
its wait). Results go back to the event loop in one ``call_soon_threadsafe`` per batch.

If a merged run fails, each request of the batch is run alone, so one request can never
fail another.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Run = Callable[[list[str], dict[str, np.ndarray]], list[np.ndarray]]


@dataclass
class _Job:
    outputs: list[str]
    feeds: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future[list[np.ndarray]]
    loop: asyncio.AbstractEventLoop
    result: list[np.ndarray] | BaseException | None = field(default=None)


def _deliver(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # cancelled by a client that went away
            continue
        if isinstance(job.result, BaseException):
            job.future.set_exception(job.result)
        else:
            assert job.result is not None
            job.future.set_result(job.result)


class Batcher:
    """A queue in front of ``run`` served by ``threads`` daemon threads."""

    def __init__(
        self,
        run: Run,
        *,
        max_batch_rows: int,
        threads: int = 1,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self._run = run
        self.max_batch_rows = max_batch_rows
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"onnxruntime-{i}", daemon=True) for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    async def run(self, outputs: list[str], feeds: dict[str, np.ndarray], rows: int) -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        job = _Job(outputs, feeds, rows, loop.create_future(), loop)
        if self._stopped:
            raise RuntimeError("the inference queue is stopped")
        self._queue.put(job)
        return await job.future

    def stop(self) -> None:
        self._stopped = True
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)

    def _loop(self) -> None:
        carry: _Job | None = None  # taken from the queue but not mergeable with the last batch
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                return
            batch, rows = [first], first.rows
            while rows < self.max_batch_rows:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # let this thread finish the batch, then stop
                    break
                if job.outputs != first.outputs or rows + job.rows > self.max_batch_rows:
                    carry = job
                    break
                batch.append(job)
                rows += job.rows
            self._execute(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
            for job in batch:
                by_loop.setdefault(job.loop, []).append(job)
            for loop, jobs in by_loop.items():
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_deliver, jobs)

    def _execute(self, batch: list[_Job]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(batch), sum(j.rows for j in batch))
        if len(batch) > 1:
            try:
                names = batch[0].feeds.keys()
                merged = {n: np.concatenate([j.feeds[n] for j in batch]) for n in names}
                results = self._run(batch[0].outputs, merged)
                start = 0
                for job in batch:
                    job.result = [r[start : start + job.rows] for r in results]
                    start += job.rows
                return
            except Exception:  # one bad apple: fall back to running each alone
                pass
        for job in batch:
            try:
                job.result = self._run(job.outputs, job.feeds)
            except Exception as exc:
                job.result = exc
