"""Talking to a real drift detector: CloudEvents built with the cloudevents SDK, status and metrics."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import httpx
import numpy as np
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from prometheus_client.parser import text_string_to_metric_families
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, SOURCE_PREFIX

Mode = Literal["binary", "structured"]


def event(
    kind: Literal["request", "response"],
    isvc: str,
    data: Any,
    *,
    event_id: str | None = None,
    component: str = "predictor",
    namespace: str = "default",
    mode: Mode = "binary",
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a payload-logger CloudEvent, exactly as KServe's agent sends it."""
    ce = CloudEvent(
        {
            "type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
            "source": SOURCE_PREFIX,
            "id": event_id or str(uuid.uuid4()),
            "inferenceservicename": isvc,
            "namespace": namespace,
            "component": component,
            "endpoint": "",
            "datacontenttype": "application/json",
        },
        data,
    )
    headers, body = to_binary(ce) if mode == "binary" else to_structured(ce)
    return dict(headers), body


def v1_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"instances": records}


def v2_tensor(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.reshape(-1).tolist(),
            }
        ]
    }


def v1_response(scores: np.ndarray) -> dict[str, Any]:
    return {
        "predictions": [{"label": int(p > 0.5), "probabilities": [1 - float(p), float(p)]} for p in scores]
    }


def v2_response(scores: np.ndarray) -> dict[str, Any]:
    probabilities = np.column_stack([1 - scores, scores]).astype(np.float32)
    return {
        "model_name": "m",
        "outputs": [
            {
                "name": "label",
                "shape": [len(scores)],
                "datatype": "INT64",
                "data": (scores > 0.5).astype(int).tolist(),
            },
            {
                "name": "probabilities",
                "shape": [len(scores), 2],
                "datatype": "FP32",
                "data": probabilities.reshape(-1).tolist(),
            },
        ],
    }


def post(client: httpx.Client, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return client.post(url, headers=headers, content=body)


def stream(status: dict[str, Any], isvc: str, component: str = "predictor") -> dict[str, Any] | None:
    for s in status.get("streams", []):
        if s["inferenceservice"] == isvc and s["component"] == component:
            return s  # type: ignore[no-any-return]
    return None


def wait_windows(
    client: httpx.Client,
    base: str,
    isvc: str,
    kind: str,
    n: int,
    timeout: float = 30.0,
    component: str = "predictor",
) -> dict[str, Any]:
    """The stream's status once ``n`` windows of ``kind`` were evaluated and the queue is idle (bounded)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        status = client.get(f"{base}/status").json()
        last = stream(status, isvc, component)
        if last is not None and last["windows_evaluated"][kind] >= n and status["queue"]["idle"]:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{isvc}: fewer than {n} {kind} windows after {timeout}s: {last}")


def metrics(client: httpx.Client, base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` by (name, labels)."""
    text = client.get(f"{base}/metrics").text
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def sample(values: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    found = [v for (n, ls), v in values.items() if n == name and want <= ls]
    if not found:
        raise AssertionError(f"no sample {name}{labels}")
    return sum(found)


def wait_idle(client: httpx.Client, base: str, timeout: float = 30.0) -> dict[str, Any]:
    """``/status`` once every accepted event was decoded and its windows tested (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"{base}/status").json()
        if status["queue"]["idle"]:
            return status
        time.sleep(0.02)
    raise AssertionError(f"the detector's queue is not idle after {timeout}s")


def wait_metric(
    client: httpx.Client, base: str, name: str, value: float, timeout: float = 15.0, **labels: str
) -> float:
    """The sample once it reached ``value`` (bounded wait); fails with the last value."""
    deadline = time.monotonic() + timeout
    last = float("nan")
    while time.monotonic() < deadline:
        last = sample(metrics(client, base), name, **labels)
        if last >= value:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{name}{labels} is {last}, not {value}, after {timeout}s")
