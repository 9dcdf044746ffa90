"""The ONNX model as a KServe ``Model``: load once, validate against the graph, infer off the loop."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import onnxruntime as ort
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from serving_common import Bundle

from predictor import metrics
from predictor.batcher import Batcher
from predictor.errors import InjectedFault, invalid
from predictor.ids import new_id
from predictor.settings import PredictorSettings
from predictor.signature import Signature

log = logging.getLogger("predictor")

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class Tensor(NamedTuple):
    """One input tensor as it came off the wire, before validation."""

    name: Any
    datatype: Any
    shape: Any
    data: Any


class OnnxModel(Model):  # type: ignore[misc]
    """Serves one model bundle (or bare ``.onnx``) with onnxruntime."""

    def __init__(self, name: str, model_dir: str, settings: PredictorSettings) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.settings = settings
        self.bundle: Bundle | None = None
        self.version: str | None = None
        self.signature: Signature | None = None
        self._session: ort.InferenceSession | None = None
        self._batcher: Batcher | None = None
        self._all_outputs: list[str] = []
        self.output_datatypes: dict[str, str] = {}
        self._infer_seconds = metrics.INFERENCE_SECONDS.labels(name)
        self._rows = metrics.ROWS.labels(name)

    # --- lifecycle ---------------------------------------------------------------------

    def load(self) -> bool:
        """Open the bundle, check its integrity, build the session and warm it up."""
        bundle = Bundle.open(self.model_dir)
        if self.settings.verify_sha256:
            bundle.verify()  # IntegrityError: __main__ refuses to start serving
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.settings.intra_op_threads
        options.inter_op_num_threads = self.settings.inter_op_threads
        options.graph_optimization_level = _OPT_LEVELS[self.settings.graph_optimization_level]
        session = ort.InferenceSession(
            str(bundle.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.signature = Signature.from_session(session)
        self._all_outputs = self.signature.output_names()
        self.output_datatypes = {s.name: s.datatype for s in self.signature.outputs}
        self._session = session
        self.bundle = bundle
        self.version = bundle.version
        self._warm_up()
        batch_dim_dynamic = all(
            s.shape and s.shape[0] < 0 for s in (*self.signature.inputs, *self.signature.outputs)
        )
        batches = metrics.BATCH_REQUESTS.labels(self.name)
        self._batcher = Batcher(
            self._run,
            max_batch_rows=self.settings.max_batch_rows if batch_dim_dynamic else 0,
            threads=self.settings.inference_threads,
            on_batch=lambda requests, rows: batches.observe(requests),
        )
        self.ready = True
        log.info(
            "loaded %s (version %s): inputs %s, outputs %s",
            bundle.model_path,
            self.version,
            [s.metadata() for s in self.signature.inputs],
            [s.metadata() for s in self.signature.outputs],
        )
        return self.ready

    def _warm_up(self) -> None:
        assert self._session is not None and self.signature is not None
        if not self.settings.warmup_rows:
            return
        feeds = {
            s.name: np.zeros(tuple(self.settings.warmup_rows if d < 0 else d for d in s.shape), dtype=s.dtype)
            for s in self.signature.inputs
        }
        self._session.run(self._all_outputs, feeds)

    def stop(self) -> None:
        if self._batcher is not None:
            self._batcher.stop()
        super().stop()

    # --- metadata ----------------------------------------------------------------------

    def get_input_types(self) -> list[dict[str, Any]]:
        return [] if self.signature is None else [s.metadata() for s in self.signature.inputs]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [] if self.signature is None else [s.metadata() for s in self.signature.outputs]

    # --- inference ---------------------------------------------------------------------

    def feeds_from_request(self, request: InferRequest) -> dict[str, np.ndarray]:
        """Validate a V2 request's inputs (REST, or gRPC through KServe's path) into feeds."""
        inputs = request.inputs
        if not isinstance(inputs, list):
            raise invalid("'inputs' must be a non-empty list of tensors")
        return self.feeds_from_tensors(
            Tensor(i.name, i.datatype, i.shape, i._raw_data if i._raw_data is not None else i.data)
            for i in inputs
        )

    def feeds_from_tensors(self, tensors: Iterable[Tensor]) -> dict[str, np.ndarray]:
        """Validate input tensors against the graph and return onnxruntime's feeds.

        ``data`` is a JSON list, a numpy array (binary REST), or bytes (gRPC raw contents).
        """
        assert self.signature is not None
        feeds: dict[str, np.ndarray] = {}
        for t in tensors:
            spec = self.signature.input(t.name)
            if spec.name in feeds:
                raise invalid(f"input '{spec.name}' is given more than once")
            shape = spec.check_header(t.datatype, t.shape, self.settings.max_rows)
            if isinstance(t.data, (bytes, memoryview)):
                feeds[spec.name] = spec.from_bytes(t.data, shape)
            elif isinstance(t.data, np.ndarray):
                feeds[spec.name] = spec._shaped(t.data.astype(spec.dtype, copy=False), shape, "values")
            else:
                feeds[spec.name] = spec.from_json(t.data, shape)
        if not feeds:
            raise invalid(
                f"'inputs' must be a non-empty list; the model's inputs are {self.signature.input_names()}"
            )
        missing = [n for n in self.signature.input_names() if n not in feeds]
        if missing:
            raise invalid(
                f"missing input(s) {missing}; the model's inputs are {self.signature.input_names()}"
            )
        rows = {a.shape[0] for a in feeds.values() if a.ndim}
        if len(rows) > 1:
            raise invalid(f"inputs disagree on the number of rows: {sorted(rows)}")
        return feeds

    def check_outputs(self, names: list[str]) -> list[str]:
        """The outputs to compute: the requested ones (validated), or all of them."""
        assert self.signature is not None
        return self.signature.check_outputs(names) if names else self._all_outputs

    def requested_outputs(self, request: InferRequest) -> list[str]:
        return self.check_outputs([o.name for o in request.request_outputs or ()])

    def feeds_from_v1(self, body: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """V1 ``{"instances": [[...], ...]}`` (or ``"inputs"``) for a single-input model."""
        assert self.signature is not None
        if not isinstance(body, Mapping):
            raise invalid("the V1 request body must be a JSON object with 'instances'")
        key = "instances" if "instances" in body else "inputs" if "inputs" in body else None
        if key is None:
            raise invalid("the V1 request body must have 'instances': a list of rows")
        if len(self.signature.inputs) != 1:
            raise invalid(
                f"V1 requests need a single-input model; use V2 for inputs {self.signature.input_names()}"
            )
        spec = self.signature.inputs[0]
        instances = body[key]
        if not isinstance(instances, list) or not instances:
            raise invalid(f"'{key}' must be a non-empty list of rows")
        shape = (len(instances), *(d for d in spec.shape[1:]))
        if any(d < 0 for d in shape[1:]):
            raise invalid(f"input '{spec.name}' has dynamic inner dimensions; use V2")
        if len(instances) > self.settings.max_rows:
            raise invalid(
                f"'{key}': {len(instances)} rows exceed the maximum of {self.settings.max_rows} per request"
            )
        try:
            return {spec.name: spec.from_json(instances, shape)}
        except InvalidInput as e:
            raise invalid(str(e).replace(f"input '{spec.name}'", f"'{key}'")) from e

    async def infer(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        """Run the session on the inference thread (the event loop stays free)."""
        assert self._batcher is not None
        if self.settings.fault_delay_ms:
            await asyncio.sleep(self.settings.fault_delay_ms / 1000.0)
        rows = self._admit(feeds)
        return await self._batcher.run(outputs, feeds, rows)

    def infer_blocking(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        """:meth:`infer` for callers already off the event loop (the gRPC server's threads)."""
        if self.settings.fault_delay_ms:
            time.sleep(self.settings.fault_delay_ms / 1000.0)
        self._admit(feeds)
        return self._run(outputs, feeds)

    def _admit(self, feeds: dict[str, np.ndarray]) -> int:
        """Injected faults (tests) and the rows metric; returns the request's rows."""
        if self.settings.fault_error_rate and random.random() < self.settings.fault_error_rate:
            raise InjectedFault("injected fault (PREDICTOR_FAULT_ERROR_RATE)")
        first = next(iter(feeds.values()))
        rows = first.shape[0] if first.ndim else 1
        self._rows.observe(rows)
        return rows

    def _run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert self._session is not None
        start = time.perf_counter()
        result = self._session.run(outputs, feeds)
        self._infer_seconds.observe(time.perf_counter() - start)
        return result  # type: ignore[no-any-return]

    def response(self, request_id: str | None, outputs: list[str], arrays: list[np.ndarray]) -> InferResponse:
        return InferResponse(
            response_id=request_id or new_id(),
            model_name=self.name,
            model_version=self.version,
            infer_outputs=[
                InferOutput(name=n, shape=list(a.shape), datatype=self.output_datatypes[n], data=a)
                for n, a in zip(outputs, arrays, strict=True)
            ],
        )

    async def predict(
        self,
        payload: InferRequest | dict[str, Any],
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse | dict[str, Any]:
        if isinstance(payload, InferRequest):
            feeds = self.feeds_from_request(payload)
            outputs = self.requested_outputs(payload)
            arrays = await self.infer(feeds, outputs)
            return self.response(payload.id, outputs, arrays)
        feeds = self.feeds_from_v1(payload)
        arrays = await self.infer(feeds, self._all_outputs)
        # model_name / model_version as V2 answers carry them (the drift detector tells models apart)
        predictions = self.v1_predictions(arrays)
        return {"predictions": predictions, "model_name": self.name, "model_version": self.version}

    def v1_predictions(self, arrays: list[np.ndarray]) -> list[Any]:
        """One entry per row: the single output's row, or ``{output: row}`` for several outputs."""
        if len(arrays) == 1:
            return arrays[0].tolist()  # type: ignore[no-any-return]
        columns = [a.tolist() for a in arrays]
        return [dict(zip(self._all_outputs, row, strict=True)) for row in zip(*columns, strict=True)]
