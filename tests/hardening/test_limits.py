"""Limits enforced before a body is read whole, and memory that stays bounded: a 50 MB body
(announced and chunked) is 413 naming the limit, 20,000 headers are 431, a half-sent body is 408,
and the largest accepted request fits the chart's memory limit (peak RSS printed and bounded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hardening_stack import (
    MODEL,
    ROW,
    Detector,
    assert_client_error,
    peak_rss_kib,
    raw_exchange,
    send_huge,
    start_detector,
    status_of,
)
from support import PredictorProcess, predictor_process

FIFTY_MB = 50_000_000
MIB = 1024


@pytest.fixture(scope="module")
def limited(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PredictorProcess]:
    p = predictor_process(
        gbm_bundle,
        tmp_path_factory.mktemp("limits") / "predictor.log",
        env={"PREDICTOR_BODY_TIMEOUT_SECONDS": "1"},
    )
    p.process.start()
    yield p
    assert p.process.stop() == 0


@pytest.fixture(scope="module")
def drift(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Detector]:
    d = start_detector(
        gbm_bundle,
        tmp_path_factory.mktemp("limits") / "detector.log",
        env={"DRIFT_BODY_TIMEOUT_SECONDS": "1"},
    )
    yield d
    assert d.process.stop() == 0


def _pid(process: object) -> int:
    proc = process.proc  # type: ignore[attr-defined]
    assert proc is not None
    return int(proc.pid)


def _body(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50_mb_body_is_413_and_memory_stays_bounded(limited: PredictorProcess, chunked: bool) -> None:
    pid = _pid(limited.process)
    before = peak_rss_kib(pid)
    answer = send_huge(limited.http, f"/v2/models/{MODEL}/infer", FIFTY_MB, chunked=chunked)
    assert status_of(answer) == 413, answer[:300]
    assert b"PREDICTOR_MAX_BODY_BYTES=8388608" in answer
    grown = peak_rss_kib(pid) - before
    print(
        f"predictor peak RSS growth for a 50 MB body ({'chunked' if chunked else 'announced'}): {grown} KiB"
    )
    assert grown < 48 * MIB  # at most the 8 MiB limit plus buffers, never the 50 MB


def test_twenty_thousand_headers_are_431(limited: PredictorProcess) -> None:
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(20_000))
    request = b"POST /v2/models/%s/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n%s\r\n{}" % (
        MODEL.encode(),
        headers,
    )
    answer = raw_exchange(limited.http, request)
    assert status_of(answer) == 431, answer[:300]
    assert_client_error(431, _body(answer), "20,000 headers")
    assert b"PREDICTOR_MAX_HEADERS=100" in answer


def test_a_half_sent_body_is_408(limited: PredictorProcess) -> None:
    request = (
        b'POST /v2/models/%s/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"in' % MODEL.encode()
    )
    answer = raw_exchange(limited.http, request)
    assert status_of(answer) == 408, answer[:300]
    assert b"PREDICTOR_BODY_TIMEOUT_SECONDS" in answer


def test_the_largest_accepted_request_fits_the_memory_limit(limited: PredictorProcess) -> None:
    """1024 rows (PREDICTOR_MAX_ROWS) padded to just under PREDICTOR_MAX_BODY_BYTES: 200, peak RSS
    well under the chart's 1 GiB predictor limit (the chart README cites the figure printed)."""
    document = orjson.dumps(
        {"inputs": [{"name": "input", "shape": [1024, 10], "datatype": "FP32", "data": ROW * 1024}]}
    )
    body = document + b" " * (8 * 1024 * 1024 - len(document))
    request = (
        b"POST /v2/models/%s/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n"
        % (
            MODEL.encode(),
            len(body),
        )
    )
    answer = raw_exchange(limited.http, request + body)
    assert status_of(answer) == 200, answer[:300]
    assert len(orjson.loads(_body(answer))["outputs"][0]["data"]) == 1024
    peak = peak_rss_kib(_pid(limited.process))
    print(f"predictor peak RSS after the largest accepted request: {peak // MIB} MiB")
    assert peak < 512 * MIB


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_detector_refuses_a_50_mb_event_before_reading_it(drift: Detector, chunked: bool) -> None:
    pid = _pid(drift.process)
    before = peak_rss_kib(pid)
    answer = send_huge(drift.url, "/", FIFTY_MB, chunked=chunked, headers=b"ce-specversion: 1.0\r\n")
    assert status_of(answer) == 413, answer[:300]
    assert b"DRIFT_MAX_BODY_BYTES=8388608" in answer
    grown = peak_rss_kib(pid) - before
    print(
        f"detector peak RSS growth for a 50 MB event ({'chunked' if chunked else 'announced'}): {grown} KiB"
    )
    assert grown < 48 * MIB


def test_the_detector_answers_20k_headers_and_half_sent_bodies(drift: Detector) -> None:
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(20_000))
    answer = raw_exchange(drift.url, b"GET /status HTTP/1.1\r\nhost: x\r\n%s\r\n" % headers)
    assert status_of(answer) == 431 and b"DRIFT_MAX_HEADERS=100" in answer, answer[:300]
    answer = raw_exchange(drift.url, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n{")
    assert status_of(answer) == 408 and b"DRIFT_BODY_TIMEOUT_SECONDS" in answer, answer[:300]
