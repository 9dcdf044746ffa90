"""The predictor, drift-detector (and rollout) images build from their Dockerfiles and answer real clients.

Containers run as the chart runs them (uid 1000, read-only root filesystem, no capabilities)
with the bundle mounted read-only at /mnt/models; the predictor logs its payloads to the drift
detector container, as KServe's payload logger does in the cluster.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
import yaml
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from docker_support import REPO, Docker, container_url, find_tool, server_ports
from prometheus_client.parser import text_string_to_metric_families
from serving_common import Bundle
from serving_common.cloudevents import REQUEST_TYPE, SOURCE_PREFIX

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]
MODEL = "diabetes-risk"


def _sample(total: float, name: str, metrics: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                total += s.value
    return total


@pytest.fixture(scope="module")
def drift(docker: Docker, network: str | None, readable_bundle: Path) -> tuple[str, str]:
    """(URL from the host, URL from other containers) of a running drift-detector container."""
    image = docker.build("drift-detector")
    port, http_port, _ = server_ports(docker)
    name = f"drift-{uuid.uuid4().hex[:6]}"
    container = docker.start(
        image, "--model_dir", "/mnt/models", "--http_port", http_port,
        port=port, mounts={readable_bundle: "/mnt/models"}, network=network, name=name,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    docker.wait_ready(container, f"{url}/ready")
    return url, container_url(docker, name, int(http_port))


@pytest.fixture(scope="module")
def predictor_urls(
    docker: Docker, network: str | None, readable_bundle: Path, drift: tuple[str, str]
) -> tuple[str, str]:
    """("127.0.0.1:PORT" from the host, "http://NAME:8080" from other containers) of a running predictor."""
    image = docker.build("predictor")
    port, http_port, grpc_port = server_ports(docker)
    name = f"predictor-{uuid.uuid4().hex[:6]}"
    container = docker.start(
        image, "--model_name", MODEL, "--model_dir", "/mnt/models", "--http_port", http_port,
        "--grpc_port", grpc_port, "--logger_url", f"{drift[1]}/", "--inference_service", "image-test",
        "--namespace", "images",
        port=port, mounts={readable_bundle: "/mnt/models"}, network=network, name=name,
    )  # fmt: skip
    url = f"127.0.0.1:{port}"
    docker.wait_ready(container, f"http://{url}/v2/models/{MODEL}/ready")
    return url, container_url(docker, name, int(http_port))


@pytest.fixture(scope="module")
def predictor(predictor_urls: tuple[str, str]) -> str:
    return predictor_urls[0]


def test_predictor_image_answers_tritonclient(predictor: str, readable_bundle: Path) -> None:
    rows = np.load(readable_bundle / "reference.npy")[:8].astype(np.float32)
    client = httpclient.InferenceServerClient(url=predictor)
    try:
        assert client.is_server_live()
        assert client.is_model_ready(MODEL)
        inp = httpclient.InferInput("input", list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows, binary_data=True)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in ("label", "probabilities")]
        result = client.infer(MODEL, [inp], outputs=outputs)
    finally:
        client.close()
    label, proba = result.as_numpy("label"), result.as_numpy("probabilities")
    session = ort.InferenceSession(str(readable_bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    want_label, want_proba = session.run(["label", "probabilities"], {"input": rows})
    assert label.dtype == np.int64 and label.shape == (8,)
    assert proba.dtype == np.float32 and proba.shape == (8, 2)
    np.testing.assert_array_equal(label, want_label)
    np.testing.assert_allclose(proba, want_proba, rtol=1e-5, atol=1e-6)


def test_predictor_image_rejects_bad_input_with_400(predictor: str) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    r = httpx.post(f"http://{predictor}/v2/models/{MODEL}/infer", json=body, timeout=10)
    assert r.status_code == 400, r.text
    assert "input" in r.text


def test_drift_image_accepts_a_cloudevent(drift: tuple[str, str], readable_bundle: Path) -> None:
    rows = np.load(readable_bundle / "reference.npy")[:4]
    body = {
        "inputs": [{"name": "input", "shape": [4, 10], "datatype": "FP32", "data": rows.reshape(-1).tolist()}]
    }
    event = CloudEvent(
        {
            "type": REQUEST_TYPE, "source": SOURCE_PREFIX, "id": str(uuid.uuid4()),
            "inferenceservicename": "cloudevent-test", "namespace": "images", "component": "predictor",
            "endpoint": "", "datacontenttype": "application/json",
        },
        body,
    )  # fmt: skip
    headers, data = to_binary(event)
    r = httpx.post(f"{drift[0]}/", headers=dict(headers), content=data, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    bad = httpx.post(f"{drift[0]}/", headers={"content-type": "application/json"}, content=b"{}", timeout=10)
    assert bad.status_code == 400, bad.text
    metrics = httpx.get(f"{drift[0]}/metrics", timeout=10).text
    assert (
        _sample(0, "drift_events_received_total", metrics, inferenceservice="cloudevent-test", type="request")
        == 1
    )


def test_predictor_logs_payloads_to_the_drift_image(
    predictor: str, drift: tuple[str, str], readable_bundle: Path
) -> None:
    """The chain the chart sets up: inference -> payload-logger CloudEvents -> drift detector."""

    def received() -> dict[str, float]:
        metrics = httpx.get(f"{drift[0]}/metrics", timeout=10).text
        return {
            t: _sample(0, "drift_events_received_total", metrics, inferenceservice="image-test", type=t)
            for t in ("request", "response")
        }

    def settled() -> dict[str, float]:  # events of earlier tests may still be on their way
        last, deadline = received(), time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = received()
            if now == last:
                return now
            last = now
        return last

    before = settled()
    rows = np.load(readable_bundle / "reference.npy")[:5]
    body = {
        "inputs": [{"name": "input", "shape": [5, 10], "datatype": "FP32", "data": rows.reshape(-1).tolist()}]
    }
    r = httpx.post(f"http://{predictor}/v2/models/{MODEL}/infer", content=json.dumps(body), timeout=10)
    assert r.status_code == 200, r.text
    want = {t: before[t] + 1 for t in before}
    deadline = time.monotonic() + 30
    now = received()
    while now != want and time.monotonic() < deadline:
        time.sleep(0.5)
        now = received()
    assert now == want, f"before the request {before}, after {now}"


def test_chart_helm_test_pod_passes_against_the_image(
    docker: Docker, network: str | None, predictor_urls: tuple[str, str]
) -> None:
    """The chart's `helm test` pod, run as rendered (same image, command, user) against the
    predictor image (no transformer, no explainer: its host is the predictor's)."""
    helm = find_tool("helm")
    if helm is None:
        pytest.skip("helm not found: run `make tools`")
    out = subprocess.run(
        [helm, "template", "t", str(REPO / "helm" / "model-serving"), "--namespace", "ns",
         "--set", "transformer.enabled=false", "--set", "explainer.enabled=false"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    (pod,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Pod"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "model-serving/predictor:0.1.0" and container["command"] == ["python", "-c"]
    in_cluster = "http://t-model-serving.ns.svc.cluster.local"  # the mesh host (VirtualService)
    script = container["args"][0]
    assert in_cluster in script
    script = script.replace(in_cluster, predictor_urls[1])
    image = docker.build("predictor")
    proc = docker.run_once(image, "python", "-c", script, network=network)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "inference ok:" in proc.stdout
    assert "sidecar not stopped" in proc.stdout  # no pilot-agent in a plain container


def test_drift_image_has_a_postgresql_driver(docker: Docker, network: str | None) -> None:
    """DRIFT_FEEDBACK_DB_URL=postgresql+psycopg://... needs libpq: psycopg-binary brings it (the
    slim base image has no libpq5), so the driver loads and an unreachable server is a clean error."""
    image = docker.build("drift-detector")
    probe = (
        "import psycopg, sqlalchemy; print(psycopg.pq.__impl__, psycopg.pq.version()); "
        "engine = sqlalchemy.create_engine('postgresql+psycopg://u:p@127.0.0.1:1/feedback'); "
        "engine.connect()"
    )
    proc = docker.run_once(image, "python", "-c", probe, network=network)
    first = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    assert first.split()[0] in ("binary", "c"), proc.stdout + proc.stderr
    assert int(first.split()[1]) >= 100000, first  # libpq 10+
    assert "OperationalError" in proc.stderr and "127.0.0.1" in proc.stderr, proc.stderr[-2000:]


def test_rollout_image_runs_the_cli(docker: Docker, network: str | None) -> None:
    """The image the chart's rollout CronJob runs: `python -m rollout`, uid 1000, read-only root."""
    image = docker.build("rollout")
    proc = docker.run_once(image, "python", "-m", "rollout", "run", "--help", network=network)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for option in ("--virtual-service", "--prometheus-url", "--steps", "ROLLOUT_STABLE"):
        assert option in proc.stdout, option


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])
def test_transformer_image_in_front_of_the_predictor_image(
    docker: Docker, network: str | None, readable_bundle: Path, predictor_urls: tuple[str, str], protocol: str
) -> None:
    """The entry hop the VirtualService routes to: raw records -> transformer image -> predictor image,
    with the flags the chart passes (``--predictor_protocol`` v2 over HTTP, grpc-v2 over gRPC)."""
    if docker.host_network and protocol == "grpc-v2":
        pytest.skip("the predictor's gRPC port is not reachable by name on a host-network daemon")
    spec = Bundle.open(readable_bundle).spec()
    rows = np.load(readable_bundle / "reference.npy")[:6].astype(np.float32)
    records = [spec.decode_row(r) for r in rows]
    session = ort.InferenceSession(str(readable_bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    want_label, want_proba = session.run(["label", "probabilities"], {"input": rows})

    predictor_host = predictor_urls[1].removeprefix("http://")
    if protocol == "grpc-v2":
        predictor_host = predictor_host.rsplit(":", 1)[0] + ":8081"
    image = docker.build("transformer")
    port, http_port, grpc_port = server_ports(docker)
    name = f"transformer-{uuid.uuid4().hex[:6]}"
    container = docker.start(
        image, "--model_name", MODEL, "--predictor_host", predictor_host, "--predictor_protocol", protocol,
        "--model_dir", "/mnt/models", "--http_port", http_port, "--grpc_port", grpc_port,
        port=port, mounts={readable_bundle: "/mnt/models"}, network=network, name=name,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    docker.wait_ready(container, f"{url}/v2/models/{MODEL}/ready")
    r = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": records}, timeout=30)
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [p["label"] for p in predictions] == [spec.classes[i] for i in want_label]
    np.testing.assert_allclose(
        [p["probability"] for p in predictions], want_proba[np.arange(len(rows)), want_label], rtol=1e-5
    )
    docker.remove(container)
