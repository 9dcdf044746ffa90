"""The chart's grpc-v2 wiring, reproduced with real processes: transformer -> predictor (gRPC) with
``--logger_url`` -> the real drift detector, which sees the rows and reaches a verdict.

KServe's agent cannot see the predictor's gRPC port, so here the predictor logs its own
exchanges (as the V2 JSON REST would have carried); the detector judges that traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from drift_client import metrics, sample, wait_windows
from drift_server import start_detector
from model_stack import Server, component, started_together
from serving_common import Bundle

WINDOW = 50
ISVC = "chain-grpc"
PROTOCOL = ("--predictor_protocol", "grpc-v2")


@pytest.fixture(scope="module")
def chain(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server, Server]]:
    logs = tmp_path_factory.mktemp("chain")
    detector, detector_proc = start_detector(
        gbm_bundle, logs / "drift.log", {"DRIFT_WINDOW_SIZE": str(WINDOW)}
    )
    try:
        predictor = component(
            "predictor",
            [
                *("--model_dir", str(gbm_bundle), "--logger_url", detector),
                *("--inference_service", ISVC, "--namespace", "ml"),
            ],
            logs / "predictor.log",
        )
        with started_together([predictor]):
            transformer = component(
                "transformer",
                [*("--model_dir", str(gbm_bundle), "--predictor_host", predictor.grpc), *PROTOCOL],
                logs / "transformer.log",
            )
            with started_together([transformer]):
                yield detector, predictor, transformer
    finally:
        detector_proc.stop()


def test_transformer_grpc_traffic_reaches_a_drift_verdict(
    gbm: Bundle, chain: tuple[str, Server, Server]
) -> None:
    detector, predictor, transformer = chain
    spec, reference = gbm.spec(), gbm.reference()
    bmi = spec.names.index("bmi")
    shifted = reference[100 : 100 + WINDOW].copy()
    shifted[:, bmi] += 1.0 * reference[:, bmi].std()
    with httpx.Client(timeout=30) as http:
        for rows in (reference[:WINDOW], shifted):  # one calm window, then BMI one sd up
            for i in range(0, WINDOW, 10):
                records = [spec.decode_row(row) for row in rows[i : i + 10].tolist()]
                r = http.post(transformer.v1, json={"instances": records})
                assert r.status_code == 200, r.text
                assert len(r.json()["predictions"]) == 10
        bad = http.post(transformer.v1, json={"instances": [{"age": "old"}]})  # refused by the transformer
        assert bad.status_code == 400
        status = wait_windows(http, detector, ISVC, "features", 2)
        values = metrics(http, detector)
        predictor_metrics = http.get(f"{predictor.url}/metrics").text
    assert status["namespace"] == "ml"
    assert status["windows_evaluated"]["features"] == 2 and status["windows_drifted"]["features"] == 1
    assert status["features"]["drift"] is True and "bmi" in status["features"]["drifted_features"]
    assert status["windows_evaluated"]["prediction"] == 2  # the responses' probabilities
    labels = {
        "inferenceservice": ISVC,
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    assert sample(values, "drift_events_received_total", **labels, type="request") == 10
    assert sample(values, "drift_events_received_total", **labels, type="response") == 10
    assert sample(values, "drift_events_joined_total", **labels) == 10
    assert sample(values, "drift_feature_drifted", **labels, feature="bmi") == 1
    assert _sample(predictor_metrics, "predictor_requests_total", 'protocol="grpc_v2"', 'code="OK"') == 10
    assert _sample(predictor_metrics, "predictor_payload_logger_events_total", 'outcome="sent"') == 20


def _sample(text: str, name: str, *labels: str) -> float:
    found = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(label in line for label in labels)
    ]
    assert len(found) == 1, found
    return found[0]
