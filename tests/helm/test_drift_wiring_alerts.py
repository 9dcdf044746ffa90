"""`DriftDetectorNoEvents` (the drift detector's rule, as the chart deploys it) against the chart's own
logging wiring, in both configurations: the labels the detector gives a stream (from the events'
`ce-inferenceservicename` / `ce-namespace`) must join the predictor's scrape labels (`inferenceservice`,
which the chart's PodMonitor relabels the pod label `serving.kserve.io/inferenceservice` to, and
`namespace`), or the alert fires on healthy traffic."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import CHART, NAMESPACE, Helm, by_kind

DRIFT_RULES = sorted((CHART / "files" / "alerts").glob("drift-detector.*.yaml"))
ALERT = "DriftDetectorNoEvents"


def _event_stream(isvc: dict[str, Any]) -> dict[str, str]:
    """The stream labels the detector derives from the events this InferenceService's logger sends."""
    predictor = isvc["spec"]["predictor"]
    if "logger" in predictor:  # KServe's agent: the InferenceService's name and namespace
        return {
            "inferenceservice": isvc["metadata"]["name"],
            "inferenceservice_namespace": isvc["metadata"]["namespace"],
        }
    args = predictor["containers"][0]["args"]
    return {
        "inferenceservice": args[args.index("--inference_service") + 1],
        "inferenceservice_namespace": args[args.index("--namespace") + 1],
    }


def _isvc_scrape_label(docs: list[dict[str, Any]]) -> str:
    """The label the chart's PodMonitor gives a serving pod's InferenceService name."""
    (label,) = [
        r["targetLabel"]
        for monitor in by_kind(docs, "PodMonitor")
        for endpoint in monitor["spec"]["podMetricsEndpoints"]
        for r in endpoint.get("relabelings", [])
        if r.get("sourceLabels") == ["__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice"]
    ]
    return str(label)


def _labels(d: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in d.items())


def _promtool_case(docs: list[dict[str, Any]], events: bool) -> dict[str, Any]:
    series = []
    label = _isvc_scrape_label(docs)
    assert label == "inferenceservice"  # docs/contracts.md "Metric labels"
    for isvc in by_kind(docs, "InferenceService"):
        name = isvc["metadata"]["name"]
        # what the PodMonitor scrapes from the predictor: the InferenceService and namespace of the pod
        scrape = {"namespace": NAMESPACE, label: name, "component": "predictor", "caller": "client"}
        series.append(
            {"series": f'predictor_requests_total{{{_labels(scrape)}, code="200"}}', "values": "0+60x40"}
        )
        stream = {**_event_stream(isvc), "inferenceservice_component": "predictor", "type": "request"}
        series.append(
            {
                "series": f"drift_events_received_total{{{_labels(stream)}}}",
                "values": "0+60x40" if events else "0+0x40",
            }
        )
    # ALERTS as promtool records it: robust to the rule's annotations and extra labels
    firing = [
        {"labels": _braces({"inferenceservice": i["metadata"]["name"], "namespace": NAMESPACE}), "value": 1}
        for i in by_kind(docs, "InferenceService")
    ]
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f'count by (inferenceservice, namespace) (ALERTS{{alertname="{ALERT}", '
                'alertstate="firing"})',
                "eval_time": "35m",
                "exp_samples": [] if events else firing,
            }
        ],
    }


def _braces(d: dict[str, str]) -> str:
    return "{" + _labels(d) + "}"


@pytest.mark.parametrize("scenario", ["default", "grpc", "no-transformer"])
def test_no_events_alert_joins_the_charts_logging_wiring(
    helm: Helm, promtool: str, tmp_path: Path, scenario: str
) -> None:
    """Events flowing from every InferenceService (agent or predictor logger): no alert; events
    stopped while the predictor answers: the alert fires for each InferenceService, by name."""
    (rules,) = [r for r in DRIFT_RULES if ALERT in r.read_text()]  # the chart copy (`make manifests`)
    docs = helm.template(CHART / "ci" / f"{scenario}-values.yaml")
    spec = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [_promtool_case(docs, events=True), _promtool_case(docs, events=False)],
    }
    path = tmp_path / "no-events.test.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
