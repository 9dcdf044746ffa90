"""The InferenceService engine: a running predictor over V2 REST or gRPC.

Calls go through the one predictor-hop client (``serving_common.framework.predictor_client``),
``batch_rows`` rows per request (keep it within the predictor's ``PREDICTOR_MAX_ROWS``), at most
``concurrency`` requests in flight, on an event loop of its own in a background thread. Answers
503 (or unreachable) and 504 are retried with exponential backoff (``retries`` times, from
``backoff_seconds``, capped at 30 s); a 400 means the batch does not fit the predictor (wrong
model, ``--batch-rows`` above its row limit) and, like a retried-out failure, stops the job
(exit 6) after the chunks already done are checkpointed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
from kserve.errors import InvalidInput
from serving_common import Bundle
from serving_common.framework.predictor_client import PredictorClient
from serving_common.framework.status import PredictorCallError, PredictorTimeout, PredictorUnavailable

from predictor.batch.engine import Scores, concat
from predictor.batch.errors import EngineFailed
from predictor.batch.settings import BatchSettings

__all__ = ["V2Engine"]

log = logging.getLogger("predictor.batch")
T = TypeVar("T")
_PROTOCOLS = {"v2-rest": "v2", "v2-grpc": "grpc-v2"}
_MAX_BACKOFF = 30.0


class V2Engine:
    """Scores rows on a predictor; construct with :meth:`create` (checks it answers, reads its version)."""

    def __init__(
        self, client: PredictorClient, *, batch_rows: int, concurrency: int, retries: int, backoff: float
    ) -> None:
        self._client = client
        self._batch_rows = batch_rows
        self._concurrency = concurrency
        self._retries = retries
        self._backoff = backoff
        self._version = "unknown"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="v2-engine", daemon=True)
        self._thread.start()
        self.requests = 0
        self.retried = 0

    @classmethod
    def create(cls, args: argparse.Namespace, bundle: Bundle, settings: BatchSettings) -> V2Engine:
        name = args.model_name or bundle.name
        if not name:
            raise EngineFailed("the bundle's model card has no name; give --model-name")
        client = PredictorClient(
            host=args.predictor_host,
            protocol=_PROTOCOLS[args.engine],
            model_name=name,
            timeout=settings.timeout_seconds,
            input_name=bundle.spec().input_name,
        )
        engine = cls(
            client,
            batch_rows=args.batch_rows,
            concurrency=args.concurrency,
            retries=settings.retries,
            backoff=settings.backoff_seconds,
        )
        try:
            probe = engine._run(engine._call(np.zeros((1, bundle.spec().n_features), dtype=np.float32)))
        except BaseException:
            engine.close()
            raise
        served = probe.model_version
        if served and bundle.version and served != bundle.version:
            engine.close()
            raise EngineFailed(
                f"{client.describe()} serves {name} version {served!r} but the bundle is {bundle.version!r}; "
                "records are vectorised with the bundle's feature spec, so both must be the same model"
            )
        engine._version = served or bundle.version or "unknown"
        return engine

    @property
    def model_version(self) -> str:
        return self._version

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _call(self, matrix: np.ndarray) -> Any:
        """One request, retried on 503 / unreachable / 504 with exponential backoff."""
        delay = self._backoff
        for attempt in range(self._retries + 1):
            self.requests += 1
            try:
                return await self._client.infer(matrix, {}, None)
            except (PredictorUnavailable, PredictorTimeout) as e:
                if attempt == self._retries:
                    raise EngineFailed(f"{e} (after {self._retries} retries)") from e
                self.retried += 1
                log.warning("%s; retrying in %.1f s (%d/%d)", e, delay, attempt + 1, self._retries)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
            except InvalidInput as e:
                raise EngineFailed(
                    f"{e} (rows per request: {len(matrix)}; lower --batch-rows to the predictor's "
                    "PREDICTOR_MAX_ROWS, or check that it serves this bundle's model)"
                ) from e
            except PredictorCallError as e:
                raise EngineFailed(str(e)) from e
        raise AssertionError("unreachable")

    async def _score(self, matrix: np.ndarray) -> Scores:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(lo: int) -> Scores:
            async with gate:
                answer = await self._call(matrix[lo : lo + self._batch_rows])
                return Scores(answer.labels, answer.probabilities)

        tasks = [asyncio.ensure_future(one(lo)) for lo in range(0, len(matrix), self._batch_rows)]
        try:
            return concat(list(await asyncio.gather(*tasks)))
        finally:
            for task in tasks:
                task.cancel()

    def score(self, matrix: np.ndarray) -> Scores:
        if not len(matrix):
            return Scores(np.empty(0, np.int64), np.empty((0, 2), np.float32))
        return self._run(self._score(matrix))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
