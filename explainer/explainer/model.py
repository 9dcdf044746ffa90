"""The explainer as a KServe ``Model``: raw records in, Kernel SHAP attributions in raw feature names out.

``preprocess`` validates and vectorises the records with the shared feature spec (one 400 listing
every problem), ``explain`` runs Kernel SHAP on the SHAP worker thread with the predictor as the
model (see ``kernel.py``), ``postprocess`` answers in the caller's protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from serving_common.framework.metadata import tensor
from serving_common.framework.predictor_client import PredictorClient, request_deadline
from serving_common.framework.records_model import RecordsModel
from serving_common.headers import CALLER_EXPLAINER, forwarded

from explainer import metrics
from explainer.kernel import Attribution, KernelShap
from explainer.settings import ExplainerSettings

__all__ = ["METHOD", "Batch", "Explainer"]

log = logging.getLogger("explainer")

METHOD = "kernel_shap"


@dataclass
class Batch:
    request_id: str
    matrix: np.ndarray
    request: InferRequest | None = None
    labels: list[str] = field(default_factory=list)
    attributions: list[Attribution] = field(default_factory=list)
    deadline: float | None = None
    """The caller's deadline (``time.monotonic()`` seconds), for every predictor call it needs."""


class Abandoned(Exception):
    """The client of an explanation went away: the SHAP thread stops at its next predictor call."""


class Explainer(RecordsModel):
    """Explains ``name`` by calling the predictor of the same name."""

    platform = "kserve-explainer"

    def __init__(
        self,
        name: str,
        *,
        model_dir: str,
        predictor_host: str,
        predictor_protocol: str,
        settings: ExplainerSettings,
        predictor_use_ssl: bool = False,
    ) -> None:
        client = PredictorClient(
            host=predictor_host,
            protocol=predictor_protocol,
            model_name=name,
            timeout=settings.predictor_timeout,
            use_ssl=predictor_use_ssl,
            caller=CALLER_EXPLAINER,  # contract C1: the predictor and drift detector tell these calls apart
            max_rows=settings.predictor_max_rows,
            on_expired=metrics.DEADLINE_EXPIRED.labels(name).inc,
        )
        super().__init__(name, model_dir=model_dir, client=client, max_records=settings.max_records)
        self.settings = settings
        self.kernel: KernelShap | None = None
        self.class_index = -1
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shap")
        self._rows = metrics.PREDICTOR_ROWS.labels(name)
        self._closing: asyncio.Task[None] | None = None

    @property
    def explained_class(self) -> str:
        assert self.spec is not None
        return self.spec.classes[self.class_index]

    # --- lifecycle ------------------------------------------------------------------------

    def load(self) -> bool:
        bundle = self.open_bundle()
        assert self.spec is not None
        wanted = self.settings.explained_class or self.spec.classes[-1]
        if wanted not in self.spec.classes:
            raise ValueError(f"EXPLAINER_EXPLAINED_CLASS {wanted!r} is not one of {list(self.spec.classes)}")
        self.class_index = self.spec.classes.index(wanted)
        self.kernel = KernelShap(
            bundle.reference(),
            background_size=self.settings.background_size,
            nsamples=self.settings.nsamples,
            seed=self.settings.seed,
        )
        self.ready = True
        log.info(
            "explainer for %s (version %s): Kernel SHAP of P(%s), %d background rows; predictor: %s",
            self.name,
            self.version,
            wanted,
            self.kernel.background_rows,
            self.client.describe(),
        )
        return self.ready

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 metadata ``outputs``: what the V2 explain answer returns."""
        n_features = 0 if self.spec is None else self.spec.n_features
        return [
            tensor("label", "BYTES", [-1]),
            tensor("output", "FP64", [-1]),
            tensor("base_value", "FP64", [-1]),
            tensor("attributions", "FP64", [-1, n_features]),
        ]

    def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(RuntimeError):  # no running loop: the channel goes with the process
            self._closing = asyncio.get_running_loop().create_task(self.client.close())
        super().stop()

    def features(self, row: np.ndarray) -> dict[str, float | str]:
        """The record as the model saw it (imputed values filled in), numbers at float32's
        shortest precision (32.1, not 32.099998474121094)."""
        assert self.spec is not None
        return {
            name: float(str(np.float32(value))) if isinstance(value, float) else value
            for name, value in self.spec.decode_row(row.tolist()).items()
        }

    # --- hooks ----------------------------------------------------------------------------

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Batch:
        deadline = request_deadline(headers)
        rid, matrix = self.vectorise(payload, headers)
        return Batch(rid, matrix, payload if isinstance(payload, InferRequest) else None, deadline=deadline)

    async def explain(self, payload: Batch, headers: dict[str, str] | None = None) -> Batch:
        sent = forwarded(headers, payload.request_id)
        loop = asyncio.get_running_loop()
        abandoned = threading.Event()
        work = loop.run_in_executor(self._executor, self._explain, payload, sent, loop, abandoned)
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:  # the client left (serving_common.gate): stop at the next call
            abandoned.set()
            work.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no warning
            raise
        return payload

    def _explain(
        self,
        batch: Batch,
        headers: dict[str, str],
        loop: asyncio.AbstractEventLoop,
        abandoned: threading.Event,
    ) -> None:
        """On the SHAP thread: the records' labels (one request), then each record's attributions;
        the predictor calls run on the server's loop (the one client, its one connection). Stops
        before the next predictor call once ``abandoned`` is set (nobody waits for the answer)."""
        assert self.spec is not None and self.kernel is not None
        rid = batch.request_id
        scores = self.client.infer_from_thread(loop, batch.matrix, headers, rid, batch.deadline)
        classes = self.spec.classes
        batch.labels = [classes[i] if 0 <= i < len(classes) else str(i) for i in scores.labels.tolist()]

        def model(rows: np.ndarray) -> np.ndarray:
            if abandoned.is_set():
                raise Abandoned(f"request {rid}: the client went away; explanation stopped")
            self._rows.observe(rows.shape[0])
            answer = self.client.infer_from_thread(loop, rows, headers, rid, batch.deadline)
            return answer.probabilities[:, self.class_index].astype(np.float64)

        batch.attributions = [self.kernel.explain(row, model) for row in batch.matrix]

    async def postprocess(
        self,
        result: Batch,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        assert self.spec is not None
        names = self.spec.names
        if result.request is None:
            return {
                "model_name": self.name,
                "model_version": self.version,
                "id": result.request_id,
                "method": METHOD,
                "explained_class": self.explained_class,
                "explanations": [
                    {
                        "label": label,
                        "output": a.output,
                        "base_value": a.base_value,
                        "attributions": dict(zip(names, a.values.tolist(), strict=True)),
                        "features": self.features(row),
                    }
                    for label, a, row in zip(result.labels, result.attributions, result.matrix, strict=True)
                ],
            }
        n = len(result.attributions)
        values = np.array([a.values for a in result.attributions], dtype=np.float64).reshape(n, len(names))
        return InferResponse(
            response_id=result.request_id,
            model_name=self.name,
            model_version=self.version,
            parameters={"method": METHOD, "explained_class": self.explained_class},
            infer_outputs=[
                InferOutput("label", [n], "BYTES", np.array(result.labels, dtype=np.object_)),
                InferOutput("output", [n], "FP64", np.array([a.output for a in result.attributions])),
                InferOutput("base_value", [n], "FP64", np.array([a.base_value for a in result.attributions])),
                InferOutput(
                    "attributions", [n, len(names)], "FP64", values, parameters={"features": ",".join(names)}
                ),
            ],
        )
