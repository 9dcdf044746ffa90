"""The baseline: a naive KServe 0.21 predictor on onnxruntime, written as KServe's docs suggest.

It uses KServe's own routes and types end to end (``as_numpy``, ``set_data_from_numpy`` with
JSON outputs) and calls ``session.run`` inline. ``make bench`` runs it beside ours in the same
run so the ratio means something on any machine.
"""

from __future__ import annotations

import argparse

import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server


class NaiveOnnx(Model):  # type: ignore[misc]
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.path, sess_options=options)
        self.ready = True
        return True

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        label, proba = self.session.run(None, {"input": x})
        outputs = []
        for name, arr, dt in (("label", label, "INT64"), ("probabilities", proba, "FP32")):
            out = InferOutput(name=name, shape=list(arr.shape), datatype=dt)
            out.set_data_from_numpy(arr, binary_data=False)
            outputs.append(out)
        return InferResponse(response_id=payload.id or "0", model_name=self.name, infer_outputs=outputs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    ModelServer(http_port=args.http_port, grpc_port=args.grpc_port).start(
        [NaiveOnnx(args.model_name, args.model_path)]
    )
