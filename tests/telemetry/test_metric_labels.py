"""Issue 16 (5), one label vocabulary: every component's real ``/metrics`` (predictor with its payload
logger, transformer and explainer in front of it, the drift detector with its feedback store fed by
that logger), scraped after traffic, uses only the labels of docs/contracts.md "Metric labels":
``model_name`` as KServe's own ``request_*_seconds`` have it, the detector's streams as
``inferenceservice`` / ``inferenceservice_namespace`` / ``inferenceservice_component``, and no
``_created`` series anywhere (KServe's registry included)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from drift_server import start_detector
from prometheus_client.parser import text_string_to_metric_families
from support import MODEL, REPO, ServerProcess, free_port, predictor_process

ISVC, NAMESPACE = "risk-labels", "ml"
RECORD = {"age": 59, "sex": "male", "bmi": 32.1, "bp": 101, "tc": 157, "ldl": 93.2, "hdl": 38, "tch": 4,
          "ltg": 4.8598, "glu": 87}  # fmt: skip
OURS = re.compile(r"^(predictor|transformer|explainer|drift|quality|feedback|request)_")
"""Families of ours and KServe's (``request_*_seconds``); python_* / process_* are the client's own."""
RETIRED = {"model", "isvc", "isvc_namespace", "isvc_component"}


@dataclass
class Scrapes:
    predictor: str
    transformer: str
    explainer: str
    detector: str

    def all(self) -> dict[str, str]:
        return {k: str(v) for k, v in vars(self).items()}


def _labels_of(text: str) -> dict[str, set[frozenset[tuple[str, str]]]]:
    """Sample name -> the label sets its samples carry (``le`` / ``quantile`` left out)."""
    out: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = frozenset((k, v) for k, v in s.labels.items() if k not in ("le", "quantile"))
            out.setdefault(s.name, set()).add(labels)
    return out


def _names(text: str, sample: str) -> set[str]:
    """The label names of one sample name (every series of it has the same)."""
    sets = {frozenset(k for k, _ in labels) for labels in _labels_of(text).get(sample, set())}
    assert len(sets) == 1, f"{sample}: {sets or 'no series'}"
    return set(next(iter(sets)))


@pytest.fixture(scope="module")
def scrapes(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapes]:
    logs = tmp_path_factory.mktemp("metric-labels")
    detector, detector_proc = start_detector(
        gbm_bundle,
        logs / "drift.log",
        {"DRIFT_WINDOW_SIZE": "20", "DRIFT_FEEDBACK_DB_URL": f"sqlite:///{logs / 'feedback.db'}"},
    )
    servers: list[ServerProcess] = [detector_proc]
    try:
        predictor = predictor_process(
            gbm_bundle,
            logs / "predictor.log",
            extra=["--logger_url", detector + "/", "--inference_service", ISVC, "--namespace", NAMESPACE],
        )
        servers.append(predictor.process.start())
        t_http, e_http = free_port(), free_port()
        hop = ["--model_name", MODEL, "--model_dir", str(gbm_bundle), "--predictor_host", predictor.grpc]
        for module, port, extra in (
            ("transformer", t_http, ["--predictor_protocol", "grpc-v2", "--grpc_port", str(free_port())]),
            ("explainer", e_http, ["--grpc_port", str(free_port())]),
        ):
            servers.append(
                ServerProcess(
                    ["-m", module, *hop, "--http_port", str(port), *extra],
                    ready_url=f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready",
                    log_path=logs / f"{module}.log",
                ).start()
            )
        transformer, explainer = f"http://127.0.0.1:{t_http}", f"http://127.0.0.1:{e_http}"
        predict = f"{transformer}/v1/models/{MODEL}:predict"
        with httpx.Client(timeout=60) as client:
            for _ in range(3):
                r = client.post(predict, json={"instances": [RECORD] * 4})
                assert r.status_code == 200, r.text
            bad = client.post(predict, json={"instances": [{"age": "old"}]})
            assert bad.status_code == 400, bad.text
            r = client.post(f"{explainer}/v1/models/{MODEL}:explain", json={"instances": [RECORD]})
            assert r.status_code == 200, r.text
            feedback = client.post(
                f"{detector}/v1/models/{MODEL}:feedback", json={"instances": [{"id": "nobody", "label": 1}]}
            )
            assert feedback.status_code == 422, feedback.text
            deadline = time.monotonic() + 30  # the logger sends in the background: wait for the joins
            while True:
                detector_text = client.get(f"{detector}/metrics").text
                if "drift_events_joined_total{" in detector_text or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            yield Scrapes(
                client.get(f"{predictor.http}/metrics").text,
                client.get(f"{transformer}/metrics").text,
                client.get(f"{explainer}/metrics").text,
                detector_text,
            )
    finally:
        for server in reversed(servers):
            server.stop()


def _vocabulary() -> set[str]:
    """The label names docs/contracts.md "Metric labels" lists (first column of its table)."""
    text = (REPO / "docs" / "contracts.md").read_text()
    section = text.split("## Metric labels", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for row in re.findall(r"^\| (`[^|]+`) \|", section, flags=re.MULTILINE)
        for name in re.findall(r"`([a-z_]+)`", row)
    }


def test_no_created_series_on_any_component(scrapes: Scrapes) -> None:
    for component, text in scrapes.all().items():
        names = [s.name for f in text_string_to_metric_families(text) for s in f.samples]
        assert any(n.endswith("_total") for n in names), component  # counters are there ...
        assert [n for n in names if n.endswith("_created")] == [], component  # ... without _created
        assert "_created" not in text, component


def test_every_label_is_in_the_documented_vocabulary(scrapes: Scrapes) -> None:
    vocabulary = _vocabulary()
    assert {"model_name", "inferenceservice", "inferenceservice_namespace"} <= vocabulary
    assert not vocabulary & RETIRED
    for component, text in scrapes.all().items():
        seen = {
            (sample, name)
            for sample, sets in _labels_of(text).items()
            if OURS.match(sample)
            for labels in sets
            for name, _ in labels
        }
        assert {(s, n) for s, n in seen if n not in vocabulary} == set(), component


def test_model_label_is_model_name_as_kserve_has_it(scrapes: Scrapes) -> None:
    expected = {
        "predictor": {
            "predictor_requests_total": {"model_name", "protocol", "code", "caller"},
            "predictor_request_duration_seconds_count": {"model_name", "protocol", "caller"},
            "predictor_inference_duration_seconds_count": {"model_name"},
            "predictor_rows_per_request_count": {"model_name"},
            "predictor_batch_requests_count": {"model_name"},
            "predictor_payload_logger_events_total": {"model_name", "outcome"},
            "predictor_payload_logger_pending": {"model_name"},
            "request_predict_seconds_count": {"model_name"},  # KServe's own
        },
        "transformer": {
            "transformer_requests_total": {"model_name", "protocol", "code"},
            "transformer_request_duration_seconds_count": {"model_name", "protocol"},
            "transformer_predictor_duration_seconds_count": {"model_name", "predictor_protocol"},
        },
        "explainer": {
            "explainer_requests_total": {"model_name", "protocol", "code"},
            "explainer_request_duration_seconds_count": {"model_name", "protocol"},
            "explainer_predictor_rows_count": {"model_name"},
        },
    }
    texts = scrapes.all()
    for component, samples in expected.items():
        for sample, names in samples.items():
            assert _names(texts[component], sample) == names, (component, sample)
        for sample, sets in _labels_of(texts[component]).items():
            for labels in sets:
                if "model_name" in dict(labels):
                    assert dict(labels)["model_name"] == MODEL, (component, sample, labels)
    codes = {dict(labels)["code"] for labels in _labels_of(scrapes.transformer)["transformer_requests_total"]}
    assert codes == {"200", "400"}
    # the predictor saw the transformer's calls (gRPC) and the explainer's (marked as such)
    callers = {
        (dict(labels)["protocol"], dict(labels)["caller"])
        for labels in _labels_of(scrapes.predictor)["predictor_requests_total"]
    }
    assert callers == {("grpc_v2", "client"), ("grpc_v2", "explainer")}


def test_detector_streams_name_the_inferenceservice(scrapes: Scrapes) -> None:
    stream = {
        ("inferenceservice", ISVC),
        ("inferenceservice_namespace", NAMESPACE),
        ("inferenceservice_component", "predictor"),
    }
    received = _labels_of(scrapes.detector)["drift_events_received_total"]
    assert received == {frozenset({*stream, ("type", "request")}), frozenset({*stream, ("type", "response")})}
    assert _labels_of(scrapes.detector)["drift_events_joined_total"] == {frozenset(stream)}
    assert {("outcome", "unknown_id")} in _labels_of(scrapes.detector)["feedback_pairs_total"]
