"""The local payload logger (serving_common.payload_logger) against real receivers.

It must send exactly what KServe's agent sends, feed the real drift detector, and never make
its caller wait: a slow or dead receiver only costs dropped (counted) events.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
from cloudevents.http import from_http
from drift_client import metrics, sample, v2_response, v2_tensor, wait_windows
from drift_population import Population
from drift_receiver import WINDOW, receiving
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, SOURCE_PREFIX
from serving_common.payload_logger import PayloadLogger, request_id


async def test_events_are_kserve_agent_cloudevents() -> None:
    with receiving() as sink:
        logger = PayloadLogger(sink.url, inference_service="income", namespace="prod", component="predictor")
        await logger.start()
        rid = request_id({"Ce-Id": "req-42"})
        assert rid == "req-42"
        assert logger.log_request(rid, b'{"instances": [[1, 2]]}', "application/json")
        assert logger.log_response(rid, b'{"predictions": [0.5]}', "application/json")
        await logger.stop()
        got = sink.wait_for(2)
    assert logger.stats().sent == 2 and logger.stats().dropped == 0
    by_type = {h["ce-type"]: (h, b) for h, b in got}
    assert set(by_type) == {REQUEST_TYPE, RESPONSE_TYPE}
    for kind, body in (
        (REQUEST_TYPE, b'{"instances": [[1, 2]]}'),
        (RESPONSE_TYPE, b'{"predictions": [0.5]}'),
    ):
        headers, sent = by_type[kind]
        assert sent == body
        assert headers["ce-specversion"] == "1.0"
        assert headers["ce-id"] == "req-42"
        assert headers["ce-source"] == SOURCE_PREFIX
        assert headers["ce-inferenceservicename"] == "income"
        assert headers["ce-namespace"] == "prod"
        assert headers["ce-component"] == "predictor"
        assert headers["ce-endpoint"] == ""
        assert headers["content-type"] == "application/json"
        assert headers["ce-time"].endswith("Z")
        event = from_http(headers, sent)  # a valid CloudEvent for the SDK too
        assert event["type"] == kind and event["inferenceservicename"] == "income"
    assert request_id({}) != request_id({})  # a fresh uuid when the caller sent no ce-id


async def test_logger_feeds_the_detector_and_requests_join_responses(detector: str) -> None:
    population = Population(seed=404)
    logger = PayloadLogger(detector, inference_service="logger", component="predictor", queue_size=500)
    await logger.start()
    for i in range(WINDOW // 20):
        rid = f"logger-{i}"
        logger.log_request(rid, json.dumps(v2_tensor(population.rows(20))).encode())
        logger.log_response(rid, json.dumps(v2_response(population.scores(20))).encode())
    await logger.stop()
    assert logger.stats().sent == 2 * (WINDOW // 20)
    assert logger.stats().failed == logger.stats().dropped == 0
    with httpx.Client(timeout=10) as client:
        status = await asyncio.to_thread(wait_windows, client, detector, "logger", "prediction", 1)
        values = metrics(client, detector)
    assert status["windows_evaluated"] == {"features": 1, "prediction": 1}
    assert sample(values, "drift_events_joined_total", inferenceservice="logger") == WINDOW // 20


async def test_a_slow_receiver_costs_dropped_events_not_time() -> None:
    with receiving(delay=0.5) as slow:
        logger = PayloadLogger(slow.url, inference_service="x", queue_size=4, workers=1, timeout=5.0)
        await logger.start()
        started = time.perf_counter()
        accepted = [logger.log_request(f"id-{i}", b"{}") for i in range(100)]
        elapsed = time.perf_counter() - started
        assert elapsed < 0.05, f"logging 100 events took {elapsed:.3f}s"
        assert sum(accepted) == 4
        assert logger.stats().dropped == 96
        await logger.stop(drain_timeout=0.2)  # bounded: does not wait for all four
        stats = logger.stats()
    assert stats.enqueued == 4
    assert stats.sent + stats.failed + (stats.dropped - 96) == 4
    assert stats.dropped > 96  # what the drain deadline left behind is counted too
    assert stats.pending == 0


async def test_a_dead_or_failing_receiver_is_counted_as_failed() -> None:
    with receiving(status=500) as failing:
        logger = PayloadLogger(failing.url, inference_service="x", timeout=1.0)
        await logger.start()
        logger.log_request("a", b"{}")
        await logger.stop()
    assert logger.stats().failed == 1 and logger.stats().sent == 0
    with receiving() as gone:
        url = gone.url
    logger = PayloadLogger(url, inference_service="x", timeout=1.0)  # nothing listens any more
    await logger.start()
    logger.log_request("b", b"{}")
    await logger.stop()
    assert logger.stats().failed == 1


async def test_modes_and_logging_when_not_running() -> None:
    logger = PayloadLogger("http://127.0.0.1:9/", mode="request", inference_service="x")
    assert logger.log_request("a", b"{}") is False  # not started: dropped and counted
    assert logger.stats().dropped == 1
    await logger.start()
    assert logger.log_response("a", b"{}") is False  # mode "request" skips responses, not a drop
    assert logger.stats().dropped == 1
    await logger.stop(drain_timeout=0)
    with pytest.raises(ValueError, match="mode"):
        PayloadLogger("http://x/", mode="both", inference_service="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        PayloadLogger("ftp://x/", inference_service="x")


async def test_logging_from_another_thread() -> None:
    with receiving() as sink:
        logger = PayloadLogger(sink.url, inference_service="x")
        await logger.start()
        await asyncio.to_thread(logger.log_request, "t", b"{}")
        await logger.stop()
    assert logger.stats().sent == 1
    assert np.array_equal(np.array([h["ce-id"] for h, _ in sink.received]), np.array(["t"]))
