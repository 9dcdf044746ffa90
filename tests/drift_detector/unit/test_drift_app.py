"""The app in process (ASGI): scipy backend, sliding windows, FDR, a webhook sink, a broken bundle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from drift_detector.app import DriftService, create_app
from drift_detector.settings import Settings
from drift_population import Population, write_bundle
from drift_receiver import receiving
from fastapi import FastAPI
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

ANSWER = json.dumps({"predictions": [[0.5, 0.5]]})


def headers(event_id: str, isvc: str = "income", kind: str = REQUEST_TYPE) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": kind,
        "ce-source": "http://localhost:9081/",
        "ce-inferenceservicename": isvc,
        "ce-namespace": "ml",
        "ce-component": "predictor",
        "content-type": "application/json",
    }


async def started(app: FastAPI) -> DriftService:
    service: DriftService = app.state.service
    await service.start()
    assert service._load_task is not None
    await service._load_task
    return service


Make = Callable[..., Awaitable[tuple[httpx.AsyncClient, DriftService]]]


@pytest.fixture()
async def client_for() -> AsyncIterator[Make]:
    """Builds the app from settings, loads it, and stops every service at the end."""
    services: list[DriftService] = []

    async def make(**settings: Any) -> tuple[httpx.AsyncClient, DriftService]:
        app = create_app(Settings(**settings))
        services.append(await started(app))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift"), services[
            -1
        ]

    yield make
    for service in services:
        await service.stop()


async def wait_idle(service: DriftService) -> None:
    assert service.detector is not None
    async with asyncio.timeout(30):
        await service.detector.wait_idle()


async def answer(client: httpx.AsyncClient, event_id: str) -> None:
    """The 200 response event that lets the request's rows into the windows."""
    r = await client.post("/", headers=headers(event_id, kind=RESPONSE_TYPE), content=ANSWER)
    assert r.status_code == 200 and r.json() == {"status": "accepted", "id": event_id}, r.text


async def test_sliding_windows_with_fdr_and_a_webhook(client_for: Make, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "bundle")
    population = Population(seed=77)
    with receiving() as sink:
        client, service = await client_for(
            model_dir=bundle,
            backend="scipy",
            window_mode="sliding",
            window_size=100,
            window_step=25,
            correction="fdr",
            sink_url=sink.url,
            sink_mode="webhook",
        )
        async with client:
            for i in range(4):  # 100 in-distribution rows: the first window
                rows = population.rows(25).tolist()
                r = await client.post("/", headers=headers(f"a{i}"), content=json.dumps({"instances": rows}))
                assert r.status_code == 200 and r.json() == {"status": "accepted", "id": f"a{i}"}
                await answer(client, f"a{i}")
            for i in range(4):  # then 25 rows at a time, glucose two standard deviations up
                rows = population.rows(25, {"glu": 2.0}).tolist()
                await client.post("/", headers=headers(f"b{i}"), content=json.dumps({"instances": rows}))
                await answer(client, f"b{i}")
            await wait_idle(service)
            status = (await client.get("/status")).json()
            got = await asyncio.to_thread(sink.wait_for, 1)  # the sink posts from this loop: never block it
    (stream,) = status["streams"]
    assert status["window"] == {"size": 100, "step": 25, "mode": "sliding"}
    assert status["correction"] == "fdr" and status["backend"] == "scipy"
    assert stream["windows_evaluated"]["features"] == 5  # 100 rows, then every 25
    assert stream["features"]["drift"] is True and stream["features"]["drifted_features"] == ["glu"]
    assert 1 <= stream["windows_drifted"]["features"] <= 4
    assert stream["windows_evaluated"]["prediction"] == 0  # 8 scores: no prediction window yet
    headers_sent, body = got[0]
    assert "ce-type" not in headers_sent  # webhook mode: plain JSON
    verdict = json.loads(body)
    assert verdict["inferenceservice"] == "income" and verdict["namespace"] == "ml"
    assert verdict["kind"] == "features" and "glu" in verdict["drifted_features"]


async def test_a_bundle_that_cannot_load_is_not_ready_and_refuses_events(
    client_for: Make, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    np.save(broken / "reference.npy", np.ones((3,), dtype=np.float32))  # one dimension: unusable
    client, _ = await client_for(model_dir=broken, backend="scipy")
    async with client:
        ready = await client.get("/ready")
        assert (
            ready.status_code == 503 and "reference.npy must be [n >= 2, n_features]" in ready.json()["error"]
        )
        assert (await client.get("/live")).status_code == 503
        r = await client.post("/", headers=headers("x"), content=b'{"instances": [[1]]}')
        assert r.status_code == 503 and r.json()["reason"] == "not_ready"
        metrics = (await client.get("/metrics")).text
    assert 'drift_events_rejected_total{reason="not_ready"} 1.0' in metrics
    assert "drift_ready 0.0" in metrics


def test_settings_are_bounded() -> None:
    with pytest.raises(ValueError, match="window_step must not exceed window_size"):
        Settings(window_mode="sliding", window_size=20, window_step=50)
    with pytest.raises(ValueError, match="p_val"):
        Settings(p_val=1.5)
    with pytest.raises(ValueError, match="sink_url"):
        Settings(sink_url="ftp://x")


async def test_an_unforeseen_failure_rejects_one_event_and_the_slice_goes_on(
    client_for: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drift_detector import detector as detector_module

    real = detector_module.request_rows

    def flaky(document: Any, schema: Any) -> np.ndarray:
        if document == {"instances": "boom"}:
            raise RuntimeError("unforeseen")
        return real(document, schema)

    monkeypatch.setattr(detector_module, "request_rows", flaky)
    bundle = write_bundle(tmp_path / "bundle")
    client, service = await client_for(model_dir=bundle, backend="scipy")
    async with client:
        r = await client.post("/", headers=headers("boom"), content=json.dumps({"instances": "boom"}))
        assert r.status_code == 200
        rows = Population(seed=3).rows(2).tolist()
        await client.post("/", headers=headers("fine"), content=json.dumps({"instances": rows}))
        await answer(client, "fine")
        await wait_idle(service)
        status = (await client.get("/status")).json()
    assert status["reference"] == {"model_dir": str(bundle), "version": None}  # this card names none
    (rejection,) = status["rejections"]
    assert (rejection["id"], rejection["reason"]) == ("boom", "bad_payload")
    assert rejection["error"] == "body could not be read: RuntimeError('unforeseen')"
    (stream,) = status["streams"]
    assert stream["rows_seen"]["features"] == 2
