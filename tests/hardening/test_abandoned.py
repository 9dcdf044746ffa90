"""Work is dropped when its client is gone: an explanation whose client disconnects stops at its
next predictor call (serving_common.gate cancels it; the SHAP thread checks), so its slot
(EXPLAINER_MAX_INFLIGHT=1 here) and its CPU are free for the next client."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
from hardening_stack import MODEL, metric_value
from model_stack import component, started_together

RECORD = {"age": 60.0, "sex": "female", "bmi": 45.0, "bp": 140.0, "tc": 275.0}
RECORD |= {"ldl": 205.0, "hdl": 102.5, "tch": 10.25, "ltg": 5.0, "glu": 310.0}
RECORDS = 16


def _calls(url: str) -> float:
    return metric_value(
        httpx.get(f"{url}/metrics", timeout=10).text, "explainer_predictor_rows_count", model_name=MODEL
    )


def test_an_abandoned_explanation_stops_and_frees_its_slot(gbm_bundle: Path, tmp_path: Path) -> None:
    bundle = ["--model_dir", str(gbm_bundle)]
    predictor = component("predictor", bundle, tmp_path / "predictor.log")
    explainer = component(
        "explainer",
        [*bundle, "--predictor_host", predictor.grpc, "--predictor_protocol", "grpc-v2"],
        tmp_path / "explainer.log",
        env={"EXPLAINER_MAX_INFLIGHT": "1", "EXPLAINER_MAX_RECORDS": str(RECORDS)},
        ready_timeout=120.0,
    )
    with started_together([predictor, explainer]):
        url = explainer.url
        one = json.dumps({"instances": [RECORD]}).encode()
        assert httpx.post(f"{url}/v1/models/{MODEL}:explain", content=one, timeout=60).status_code == 200
        start = _calls(url)  # after a warm-up explanation (the first one may cost a call more)
        assert httpx.post(f"{url}/v1/models/{MODEL}:explain", content=one, timeout=60).status_code == 200
        before = _calls(url)
        single = before - start  # predictor calls of a one-record explanation: labels + attributions
        full = 1 + RECORDS * (single - 1)  # what the abandoned 16-record explanation would cost
        body = json.dumps({"instances": [RECORD] * RECORDS}).encode()
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(
                b"POST /v1/models/%s:explain HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (MODEL.encode(), len(body), body)
            )
            for _ in range(1000):  # bounded: until the explanation is under way
                if _calls(url) > before + 1:
                    break
                time.sleep(0.02)

        # the client is gone; the next explanation gets the one slot once the first has stopped
        statuses = []
        for _ in range(300):  # bounded
            r = httpx.post(f"{url}/v1/models/{MODEL}:explain", content=one, timeout=60)
            statuses.append(r.status_code)
            if r.status_code == 200:
                break
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            time.sleep(0.05)
        assert statuses[-1] == 200, statuses

        spent = _calls(url) - before - single  # less the second explanation's own calls
        assert single >= 1 and 2 <= spent < full, (single, spent, full)  # the first one stopped early
    assert "Traceback" not in (tmp_path / "explainer.log").read_text()
