"""gRPC ``ModelInfer`` exchanges are logged as the V2 JSON documents REST would have carried (C3)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from telemetry_stack import REQUEST, RESPONSE, ROWS, LoggedPredictor, by_type, grpc_infer, ort_outputs


@pytest.mark.parametrize("raw", [True, False], ids=["raw_contents", "typed_contents"])
def test_model_infer_is_logged_as_v2_json(binary: LoggedPredictor, gbm_bundle: Path, raw: bool) -> None:
    ce_id = f"grpc-ok-{raw}"
    answer = grpc_infer(binary.server.grpc, ROWS[:2], [("ce-id", ce_id)], raw=raw)
    assert answer.id == "grpc-request-id"
    events = by_type(binary.events(ce_id, 2))
    for event in events.values():
        assert event.attributes["datacontenttype"] == "application/json"
        assert event.attributes["inferenceservicename"] == "risk-stable"
    request = json.loads(events[REQUEST].body)
    assert set(request) == {"id", "inputs"}
    assert request["id"] == "grpc-request-id"
    (tensor,) = request["inputs"]
    assert (tensor["name"], tensor["shape"], tensor["datatype"]) == ("input", [2, 10], "FP32")
    assert np.array(tensor["data"], dtype=np.float32).tolist() == ROWS[:2].ravel().tolist()
    response = json.loads(events[RESPONSE].body)
    assert set(response) == {"id", "model_name", "model_version", "outputs"}
    assert response["id"] == "grpc-request-id" and response["model_name"] == binary.server.model
    assert response["model_version"] == answer.model_version != ""
    outputs = {o["name"]: o for o in response["outputs"]}
    label, proba = ort_outputs(gbm_bundle, ROWS[:2])
    assert outputs["label"]["datatype"] == "INT64" and outputs["label"]["shape"] == [2]
    assert outputs["label"]["data"] == label.tolist()
    assert outputs["probabilities"]["datatype"] == "FP32" and outputs["probabilities"]["shape"] == [2, 2]
    got = np.array(outputs["probabilities"]["data"], dtype=np.float32).reshape(2, 2)
    np.testing.assert_allclose(got, proba, rtol=0, atol=5e-7)  # float32 through JSON: within 1 ulp


def test_a_refused_grpc_call_is_a_request_event_without_response(binary: LoggedPredictor) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        grpc_infer(binary.server.grpc, ROWS[:1], [("ce-id", "grpc-refused")], name="no-such-input")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no-such-input" in (refused.value.details() or "")
    binary.marker("after-grpc-refused")
    events = binary.events("grpc-refused", 1, marker="after-grpc-refused")
    assert [e.type for e in events] == [REQUEST]
    assert json.loads(events[0].body)["inputs"][0]["name"] == "no-such-input"


def test_explainer_grpc_calls_are_labelled_and_never_logged(binary: LoggedPredictor) -> None:
    def explainer_calls(text: str) -> float:
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("predictor_requests_total{")
            and 'caller="explainer"' in line
            and 'protocol="grpc_v2"' in line
        ]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    before = explainer_calls(binary.metrics())
    metadata = [("ce-id", "grpc-explainer"), ("x-model-serving-caller", "explainer")]
    assert grpc_infer(binary.server.grpc, ROWS, metadata).id == "grpc-request-id"
    binary.marker("after-grpc-explainer")
    assert binary.events("grpc-explainer", 0, marker="after-grpc-explainer") == []
    assert explainer_calls(binary.metrics()) - before == 1
