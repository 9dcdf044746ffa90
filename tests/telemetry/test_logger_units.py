"""The logger's pure parts (serving_common: event_encoding, log_transport, payload_logger,
logger_config) against real loopback receivers: Go's formats, pipelining, the exchange rule."""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import socket
import sys
import threading

import pytest
from recording_receiver import REQUEST, RESPONSE, recording
from serving_common.event_encoding import (
    BinaryEncoder,
    Event,
    Identity,
    StructuredEncoder,
    canonical_header,
    go_time,
    metadata_json,
)
from serving_common.log_transport import FAILED, Connection
from serving_common.logger_config import add_logger_arguments, build_payload_logger, logger_settings
from serving_common.payload_logger import PayloadLogger
from support import free_port

IDENTITY = Identity("http://localhost:9081/", "risk%stable", "ml", "predictor", "")


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
        (1_700_000_000_000_000_001, "2023-11-14T22:13:20.000000001Z"),
    ],
)
def test_times_are_gos_rfc3339_nano(ns: int, text: str) -> None:
    assert go_time(ns) == text


def test_metadata_is_the_agents_json_of_canonical_header_names() -> None:
    assert canonical_header("x-model-serving-caller") == "X-Model-Serving-Caller"
    headers = {"x-model-serving-caller": "explainer", "authorization": "secret", "ce-id": "1"}
    assert metadata_json(headers, ["X-Model-Serving-Caller"]) == '{"X-Model-Serving-Caller":["explainer"]}'
    assert metadata_json(headers, []) == "{}"


def test_binary_encoding_without_content_type_and_with_percent_signs() -> None:
    encoder = BinaryEncoder("http://receiver:8080/events?x=1", IDENTITY)
    event = Event(REQUEST, "id-1", b'{"a": 1}', None, 1_700_000_000_000_000_000, "{}")
    raw = encoder.encode(event, b"2023-11-14T22:13:21Z")
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /events?x=1 HTTP/1.1" and lines[1] == "Host: receiver:8080"
    assert "Ce-Inferenceservicename: risk%stable" in lines and "Content-Length: 8" in lines
    assert "Ce-Time: 2023-11-14T22:13:20Z" in lines and "Ce-Recordedtime: 2023-11-14T22:13:21Z" in lines
    assert not any(line.lower().startswith("content-type") for line in lines)
    assert body == b'{"a": 1}'


@pytest.mark.parametrize(
    ("body", "content_type", "as_json"),
    [
        (b'{"inputs": [1, 2]}', "application/json", True),
        (b'{"instances": [[NaN, 1]]}', "application/json", False),  # not strict JSON: base64
        (gzip.compress(b'{"instances": [[1]]}'), "application/json", False),
        (b'{"inputs": []}\x00\x01\x02\x03', "application/octet-stream", False),
        (b"", None, False),
    ],
    ids=["json", "nan", "gzip", "binary-extension", "empty"],
)
def test_structured_events_carry_json_as_data_else_base64(
    body: bytes, content_type: str | None, as_json: bool
) -> None:
    docs = json.loads(
        StructuredEncoder("http://r/", IDENTITY).encode([Event(RESPONSE, "e", body, content_type, 0, "{}")])
    )
    (doc,) = docs
    if as_json:
        assert doc["data"] == json.loads(body) and "data_base64" not in doc
    else:
        assert base64.b64decode(doc["data_base64"]) == body and "data" not in doc
    assert ("datacontenttype" in doc) == (content_type is not None)
    assert doc["time"] == "1970-01-01T00:00:00Z" and doc["type"] == RESPONSE


def test_pipelined_requests_on_a_keep_alive_connection_keep_their_order() -> None:
    with recording() as rec:
        encoder = BinaryEncoder(rec.url, IDENTITY)
        requests = [
            encoder.encode(Event(REQUEST, f"p-{i}", b"{}", "application/json", 0, "{}"), b"x")
            for i in range(40)
        ]
        connection = Connection(rec.url, timeout=5.0)
        assert connection.post(requests[:1]) == [200]  # learns that the receiver keeps alive
        assert connection.post(requests[1:]) == [200] * 39
        connection.close()
        assert [p.headers["ce-id"] for p in rec.posts] == [f"p-{i}" for i in range(40)]


def test_nothing_listening_is_failed_not_raised() -> None:
    connection = Connection(f"http://127.0.0.1:{free_port()}/", timeout=1.0)
    assert connection.post([b"POST / HTTP/1.1\r\n\r\n"] * 3) == [FAILED] * 3


async def test_exchanges_follow_the_agents_rule() -> None:
    with recording() as rec:
        logger = PayloadLogger(rec.url, inference_service="x")
        await logger.start()
        logger.log_exchange("ok", b"{}", "application/json", True, b'{"r": 1}', 1)
        logger.log_exchange("refused", b"{", "application/json", False, b'{"error": "bad"}', 2)
        await logger.stop()
        request_only = PayloadLogger(rec.url, inference_service="x", mode="request")
        request_only.open()
        request_only.log_exchange("mode", b"{}", None, True, b"{}", 3)
        request_only.close()
        events = [(e.id, e.type) for e in rec.events()]
    assert events == [("ok", REQUEST), ("ok", RESPONSE), ("refused", REQUEST), ("mode", REQUEST)]
    assert logger.stats().sent == 3 and logger.stats().pending == 0


def test_one_place_for_flags_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFORMER_LOGGER_FORMAT", "batch")
    monkeypatch.setenv("TRANSFORMER_LOGGER_QUEUE_SIZE", "77")
    settings = logger_settings("TRANSFORMER")
    assert settings.format == "batch" and settings.queue_size == 77
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name", default="m")
    add_logger_arguments(parser)
    assert build_payload_logger(parser.parse_args([]), settings, component="transformer") is None
    args = parser.parse_args(["--logger_url", "http://127.0.0.1:1/", "--namespace", "ml"])
    logger = build_payload_logger(args, settings, component="transformer")
    assert logger is not None and logger.format == "batch" and logger.queue_size == 77
    assert logger.identity == Identity("http://localhost:9081/", "m", "ml", "transformer", "")
    monkeypatch.setenv("TRANSFORMER_LOGGER_FORMAT", "xml")
    with pytest.raises(ValueError, match="format"):
        logger_settings("TRANSFORMER")


def _scripted_receiver(answers: bytes, requests: int) -> tuple[str, threading.Thread]:
    """Accepts one connection, reads ``requests`` POSTs, answers with ``answers`` in 5-byte pieces."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            seen = b""
            while seen.count(b"\r\n\r\n") < requests:
                seen += conn.recv(65536)
            for i in range(0, len(answers), 5):
                conn.sendall(answers[i : i + 5])
            conn.recv(1)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/", thread


def test_answers_split_anywhere_chunked_or_sized_are_read_in_order() -> None:
    answers = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nerror"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    url, thread = _scripted_receiver(answers, 6)
    connection = Connection(url, timeout=5.0)
    connection._keeps_alive = True  # as learnt from an earlier answer: all six go out at once
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    assert connection.post([request] * 6) == [200, 202, 200, 200, 500, 204]
    connection.close()
    thread.join(5)


def test_the_logger_is_pure_contract_code_importable_in_the_drift_virtualenv() -> None:
    """C5: no kserve / grpc / httpx at import, and it imports where alibi-detect lives."""
    import subprocess

    from support import VENV_DRIFT_PYTHON

    code = (
        "import sys\n"
        "import serving_common.payload_logger, serving_common.logger_config\n"
        "import serving_common.event_encoding, serving_common.log_transport\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kserve', 'grpc', 'httpx', 'fastapi'))\n"
        "print(bad)\n"
    )
    python = VENV_DRIFT_PYTHON if VENV_DRIFT_PYTHON.exists() else sys.executable
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
