"""In-process unit tests of the explainer: Kernel SHAP against onnxruntime, error mapping, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from explainer.kernel import KernelShap, ModelFunction
from explainer.model import Explainer
from explainer.settings import ExplainerSettings
from kserve.errors import InvalidInput
from serving_common import Bundle
from serving_common.framework.status import (
    PredictorFailed,
    PredictorTimeout,
    PredictorUnavailable,
    http_status,
)
from serving_common.headers import CALLER_EXPLAINER, CALLER_HEADER, forwarded


@pytest.fixture(scope="module")
def model(gbm_bundle: Path) -> ModelFunction:
    session = ort.InferenceSession(str(gbm_bundle / "model.onnx"), providers=["CPUExecutionProvider"])

    def f(rows: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {"input": rows.astype(np.float32)})[0][:, 1].astype(np.float64)

    return f


@pytest.mark.parametrize(("background", "rows"), [(10, 10), (1000, 250)])
def test_attributions_add_up(gbm_bundle: Path, model: ModelFunction, background: int, rows: int) -> None:
    reference = Bundle.open(gbm_bundle).reference()
    kernel = KernelShap(reference, background_size=background, nsamples=None, seed=0)
    assert kernel.background_rows == rows
    for x in reference[:3]:
        a = kernel.explain(x, model)
        assert a.values.shape == (10,)
        assert abs(a.base_value + a.values.sum() - a.output) < 1e-9
        assert abs(a.output - float(model(x.reshape(1, -1))[0])) < 1e-12


def test_sampled_coalitions_are_seeded(gbm_bundle: Path, model: ModelFunction) -> None:
    reference = Bundle.open(gbm_bundle).reference()
    x = reference[5]
    first = KernelShap(reference, background_size=10, nsamples=100, seed=3).explain(x, model)
    second = KernelShap(reference, background_size=10, nsamples=100, seed=3).explain(x, model)
    other = KernelShap(reference, background_size=10, nsamples=100, seed=4).explain(x, model)
    np.testing.assert_array_equal(first.values, second.values)
    assert not np.array_equal(first.values, other.values)
    assert abs(first.base_value + first.values.sum() - first.output) < 1e-9


def test_all_perturbations_of_a_record_in_one_model_call(gbm_bundle: Path, model: ModelFunction) -> None:
    reference = Bundle.open(gbm_bundle).reference()
    calls: list[int] = []

    def counting(rows: np.ndarray) -> np.ndarray:
        calls.append(rows.shape[0])
        return model(rows)

    KernelShap(reference, background_size=10, nsamples=None, seed=0).explain(reference[0], counting)
    assert calls == [10, 1, (2**10 - 2) * 10]  # background once, the record, every coalition at once


def test_unknown_explained_class_refuses_to_load(gbm_bundle: Path) -> None:
    settings = ExplainerSettings(explained_class="medium_risk")
    explainer = Explainer(
        "m", model_dir=str(gbm_bundle), predictor_host="p:1", predictor_protocol="grpc-v2", settings=settings
    )
    with pytest.raises(ValueError, match="'medium_risk' is not one of"):
        explainer.load()


def test_predictor_errors_keep_their_meaning(gbm_bundle: Path) -> None:
    explainer = Explainer(
        "m",
        model_dir=str(gbm_bundle),
        predictor_host="p:1",
        predictor_protocol="v2",
        settings=ExplainerSettings(),
    )
    client = explainer.client
    assert client.caller == CALLER_EXPLAINER and CALLER_HEADER == "x-model-serving-caller"
    for status, kind, http in [
        (400, InvalidInput, 400),
        (503, PredictorUnavailable, 503),
        (504, PredictorTimeout, 504),
        (500, PredictorFailed, 502),
    ]:
        mapped = client.from_http(status, b'{"error": "said %d"}' % status)
        assert isinstance(mapped, kind) and http_status(mapped) == http
    assert forwarded({"Traceparent": "t", "X-B3-Sampled": "1", "Cookie": "c"}) == {
        "traceparent": "t",
        "x-b3-sampled": "1",
    }
