"""The two models: a scikit-learn pipeline (stable) and a torch MLP (canary), each exported to ONNX.

Both graphs take one FP32 input ``input [batch, n_features]`` (the shared vectoriser's
output) and give the same two outputs, so clients and the canary see one signature:

* ``label``          INT64 ``[batch]``: the predicted class index
* ``probabilities``  FP32 ``[batch, 2]``: class probabilities

Preprocessing lives inside both graphs (imputation for the trees, standardisation for the MLP).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

OUTPUT_LABEL = "label"
OUTPUT_PROBABILITIES = "probabilities"
OPSET = 17


@dataclass
class Trained:
    onnx_bytes: bytes
    predict_proba: Callable[[np.ndarray], np.ndarray]
    """The native model's probabilities, float64 ``[n, 2]``, for the parity check."""
    parameters: dict[str, Any]


def train_gbm(x: np.ndarray, y: np.ndarray, seed: int, input_name: str) -> Trained:
    from onnx import ModelProto
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    params: dict[str, Any] = {
        "n_estimators": 150,
        "max_depth": 3,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "random_state": seed,
    }
    clf = GradientBoostingClassifier(**params)
    # Trees need no scaling, and a float32 scaler in front of them flips splits that lie
    # within rounding distance of a threshold (ONNX parity broke at 2e-1 with one). The
    # imputer is exact arithmetic and keeps NaN handling inside the graph.
    pipe = Pipeline([("impute", SimpleImputer(strategy="median")), ("gbm", clf)])
    pipe.fit(x, y)
    onx = convert_sklearn(
        pipe,
        initial_types=[(input_name, FloatTensorType([None, x.shape[1]]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": OPSET, "ai.onnx.ml": 3},
    )
    assert isinstance(onx, ModelProto)
    names = [o.name for o in onx.graph.output]
    if names != [OUTPUT_LABEL, OUTPUT_PROBABILITIES]:
        raise RuntimeError(f"unexpected ONNX outputs from skl2onnx: {names}")
    onx.doc_string = "diabetes high-risk classifier: SimpleImputer + GradientBoostingClassifier"
    return Trained(
        onnx_bytes=onx.SerializeToString(),
        predict_proba=lambda a: pipe.predict_proba(a),
        parameters={"model": "gbm", "preprocessing": "SimpleImputer(median)", **params},
    )


def train_mlp(x: np.ndarray, y: np.ndarray, seed: int, input_name: str) -> Trained:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    params: dict[str, Any] = {
        "hidden": [32, 16],
        "epochs": 400,
        "learning_rate": 0.01,
        "weight_decay": 1e-3,
        "seed": seed,
    }

    class MLP(nn.Module):
        mean: torch.Tensor
        std: torch.Tensor

        def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
            h1, h2 = params["hidden"]
            self.net = nn.Sequential(
                nn.Linear(len(mean), h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, 2)
            )

        def logits(self, inp: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.net((inp - self.mean) / self.std)
            return out

        def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            probabilities = torch.softmax(self.logits(inp), dim=1)
            return torch.argmax(probabilities, dim=1), probabilities

    std = x.std(axis=0)
    model = MLP(x.mean(axis=0), np.where(std > 0, std, 1.0))
    opt = torch.optim.Adam(
        model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"]
    )
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.int64)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(params["epochs"]):
        opt.zero_grad()
        loss = loss_fn(model.logits(xt), yt)
        loss.backward()
        opt.step()
    model.eval()

    # the exporter logs at WARNING that torchvision is absent (its ops are not ours) and its
    # passes log each step at INFO: library noise for whoever trains
    exporter_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    exporter_log.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # torch.export's own internals emit FutureWarnings about its pytree API; not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            model,
            (xt[:2],),
            input_names=[input_name],
            output_names=[OUTPUT_LABEL, OUTPUT_PROBABILITIES],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1 << 20)},),
            opset_version=max(OPSET, 18),
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    onnx_bytes = program.model_proto.SerializeToString()

    def predict_proba(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.asarray(model(torch.tensor(a, dtype=torch.float32))[1].numpy(), dtype=np.float64)

    return Trained(onnx_bytes=onnx_bytes, predict_proba=predict_proba, parameters={"model": "mlp", **params})


TRAINERS: dict[str, Callable[[np.ndarray, np.ndarray, int, str], Trained]] = {
    "gbm": train_gbm,
    "mlp": train_mlp,
}
