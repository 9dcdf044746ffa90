"""Issue 16 (2), (3), (5), (6): a real predictor (and transformer in front of it) as an on-call
engineer meets them: JSON lines only, the effective settings once, bundle/version/sha256/ports at
start, one access line per request with its request id, ``x-request-id`` on every answer,
``--help`` listing every variable, and the chart's NOTES commands run as printed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from operability_runs import VENV_DRIFT_PYTHON
from support import REPO, ServerProcess, free_port

MODEL = "diabetes-risk"


@dataclass
class Stack:
    predictor: str
    transformer: str
    predictor_log: Path
    predictor_grpc: int
    transformer_log: Path

    def predictor_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.predictor_log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def stack(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("operability-logs")
    p_http, p_grpc, t_http, t_grpc = free_port(), free_port(), free_port(), free_port()
    predictor = ServerProcess(
        ["-m", "predictor", "--model_name", MODEL, "--model_dir", str(gbm_bundle),
         "--http_port", str(p_http), "--grpc_port", str(p_grpc)],
        ready_url=f"http://127.0.0.1:{p_http}/v2/models/{MODEL}/ready",
        env={"PREDICTOR_ACCESS_LOG": "true", "PREDICTOR_LOGGER_TIMEOUT": "3", "PREDICTOR_LOGGER_TOKEN_X": ""},
        log_path=logs / "predictor.log",
    )  # fmt: skip
    transformer = ServerProcess(
        ["-m", "transformer", "--model_name", MODEL, "--model_dir", str(gbm_bundle),
         "--predictor_host", f"127.0.0.1:{p_grpc}", "--predictor_protocol", "grpc-v2",
         "--http_port", str(t_http), "--grpc_port", str(t_grpc)],
        ready_url=f"http://127.0.0.1:{t_http}/v2/models/{MODEL}/ready",
        env={"TRANSFORMER_ACCESS_LOG": "true"},
        log_path=logs / "transformer.log",
    )  # fmt: skip
    predictor.env.pop("PREDICTOR_LOGGER_TOKEN_X")  # (unknown variables are refused: see the next tests)
    with predictor, transformer:
        yield Stack(
            f"http://127.0.0.1:{p_http}",
            f"http://127.0.0.1:{t_http}",
            logs / "predictor.log",
            p_grpc,
            logs / "transformer.log",
        )


def _lines_of(stack: Stack, request_id: str, timeout: float = 10.0) -> list[dict[str, object]]:
    """Lines carrying ``request_id``, once its access line (written after the answer) is there."""
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in stack.predictor_lines() if d.get("request_id") == request_id]
        if any(d["logger"] == "uvicorn.access" for d in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_start_is_logged_once_as_json_with_settings_bundle_and_ports(stack: Stack, gbm_bundle: Path) -> None:
    lines = stack.predictor_lines()  # every line parses: one format, KServe's and uvicorn's too
    assert {d["component"] for d in lines} == {"predictor"}
    assert {"kserve", "uvicorn.error", "predictor"} <= {str(d["logger"]) for d in lines}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(d["time"])) for d in lines)
    settings = [d for d in lines if d["message"] == "effective settings"]
    assert len(settings) == 1
    values = settings[0]["settings"]
    assert isinstance(values, dict)
    assert values["PREDICTOR_ACCESS_LOG"] is True and values["PREDICTOR_MAX_ROWS"] == 1024
    assert values["PREDICTOR_LOGGER_TIMEOUT"] == 3.0 and values["--model_dir"] == str(gbm_bundle)
    card = json.loads((gbm_bundle / "model_card.json").read_text())
    (ready,) = [d for d in lines if str(d["message"]).startswith(f"model {MODEL} ready")]
    assert ready["sha256"] and ready["sha256"] in json.dumps(card)
    assert ready["sha256_verified"] is True and ready["model_version"] == card.get(
        "version", ready["model_version"]
    )
    (serving,) = [d for d in lines if str(d["message"]).startswith(f"serving {MODEL} on http port")]
    assert serving["grpc_port"] == stack.predictor_grpc
    assert not [d for d in lines if d["level"] in ("WARNING", "ERROR")], lines


def test_one_access_line_per_request_with_its_request_id(stack: Stack) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]}
    url = f"{stack.predictor}/v2/models/{MODEL}/infer"
    r = httpx.post(url, json=body, headers={"x-request-id": "req-ops-1"}, timeout=10)
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-ops-1"
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    bad = httpx.post(url, json={"inputs": []}, headers={"traceparent": traceparent}, timeout=10)
    assert bad.status_code == 400 and bad.headers["x-request-id"]  # a generated id, on errors too
    v1 = httpx.post(
        f"{stack.predictor}/v1/models/{MODEL}:predict", json={"instances": [[0.0] * 10]}, timeout=10
    )
    assert v1.status_code == 200 and v1.headers["x-request-id"]
    mine = _lines_of(stack, "req-ops-1")
    assert len(mine) == 1, mine  # one line about this request: uvicorn's access line, nothing else
    assert mine[0]["logger"] == "uvicorn.access" and "POST /v2/models/diabetes-risk/infer" in str(
        mine[0]["message"]
    )
    assert [d["logger"] for d in _lines_of(stack, v1.headers["x-request-id"])] == ["uvicorn.access"]
    rejected = _lines_of(stack, bad.headers["x-request-id"])
    assert {d["logger"] for d in rejected} == {"predictor.rest", "uvicorn.access"}  # the why + the access
    assert all(d["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" for d in rejected)


def test_help_lists_every_variable_with_default_and_meaning() -> None:
    from predictor.settings import PredictorLoggerSettings, PredictorSettings

    out = subprocess.run(
        [sys.executable, "-m", "predictor", "--help"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for cls in (PredictorSettings, PredictorLoggerSettings):
        prefix = str(cls.model_config.get("env_prefix"))
        for field, info in cls.model_fields.items():
            line = next(
                (ln for ln in out.splitlines() if ln.strip().startswith(f"{prefix}{field.upper()} [")), ""
            )
            assert line, f"{prefix}{field.upper()} not in --help"
            default = info.get_default(call_default_factory=True)
            assert line.endswith(f" [{default}]"), line
    assert "PREDICTOR_MAX_ROWS [1024]\n      Most rows (first dimension) one request may carry" in out
    assert "settings.py" not in out  # an image user cannot read it
    drift = subprocess.run(
        [str(VENV_DRIFT_PYTHON), "-m", "drift_detector", "--help"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "DRIFT_WINDOW_SIZE [200]" in drift and "DRIFT_JOIN_TIMEOUT_SECONDS [60.0]" in drift


def _notes(*values: str) -> str:
    out = subprocess.run(
        ["helm", "install", "model-serving", str(REPO / "helm/model-serving"), "--namespace", "models",
         "--dry-run=client", *values],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return out[out.index("NOTES:") :]


def _curl_command(notes: str) -> str:
    """The inference ``curl`` of step 2, as printed (continuation lines and the quoted body)."""
    start = notes.index("   curl -sS")
    end = notes.index("}]}'", start) + len("}]}'")
    return notes[start:end]


@pytest.mark.parametrize("scenario", ["default", "no-transformer"])
def test_notes_inference_command_runs_as_printed(stack: Stack, scenario: str) -> None:
    values = (
        []
        if scenario == "default"
        else ["-f", str(REPO / "helm/model-serving/ci/no-transformer-values.yaml")]
    )
    notes = _notes(*values)
    assert "@request.json" not in notes
    checked = 0
    for block in re.findall(r"\n\n((?:   .*\n)+)", notes):  # every indented command block parses as shell
        commands = "\n".join(ln for ln in block.splitlines() if not ln.strip().startswith("#"))
        if not re.match(r"\s*(kubectl|curl|export|helm) ", commands):
            continue  # prose
        checked += 1
        check = subprocess.run(["bash", "-n"], input=commands, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"{commands}\n{check.stderr}"
    assert checked >= 4
    target = stack.transformer if scenario == "default" else stack.predictor
    command = _curl_command(notes).replace("http://$INGRESS", target)
    done = subprocess.run(["bash", "-c", f"{command} -w '\\n%{{http_code}}'"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    body, _, code = done.stdout.rpartition("\n")
    assert code == "200", done.stdout + done.stderr
    outputs = {o["name"]: o for o in json.loads(body)["outputs"]}
    assert (
        ("label" in outputs and "probability" in outputs)
        if scenario == "default"
        else "probabilities" in outputs
    )


def test_no_created_series_on_metrics(stack: Stack) -> None:
    for base in (stack.predictor, stack.transformer):
        text = httpx.get(f"{base}/metrics", timeout=10).text
        assert "_total" in text  # counters are there (KServe's and ours) ...
        assert not [
            ln for ln in text.splitlines() if "_created" in ln.split("{")[0].split(" ")[0]
        ]  # ... alone


def test_transformer_access_line_carries_the_request_id(stack: Stack) -> None:
    record = {"age": 59, "sex": "male", "bmi": 32.1, "bp": 101, "tc": 157, "ldl": 93.2, "hdl": 38, "tch": 4,
              "ltg": 4.8598, "glu": 87}  # fmt: skip
    url = f"{stack.transformer}/v1/models/{MODEL}:predict"
    r = httpx.post(url, json={"instances": [record]}, headers={"x-request-id": "req-chain-1"}, timeout=10)
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-chain-1"
    bad = httpx.post(url, json={"instances": [{"age": "old"}]}, timeout=10)
    assert bad.status_code == 400 and bad.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(ln) for ln in stack.transformer_log.read_text().splitlines() if ln.strip()]
        mine = [d for d in lines if d.get("request_id") in ("req-chain-1", bad.headers["x-request-id"])]
        if len(mine) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(d["logger"], d["request_id"]) for d in mine if d["logger"] == "uvicorn.access"] == [
        ("uvicorn.access", "req-chain-1"),
        ("uvicorn.access", bad.headers["x-request-id"]),
    ], mine
    assert {d["component"] for d in lines} == {"transformer"}


def test_grpc_failure_line_carries_the_request_id(gbm_bundle: Path, tmp_path: Path) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    http, port = free_port(), free_port()
    failing = ServerProcess(
        ["-m", "predictor", "--model_name", MODEL, "--model_dir", str(gbm_bundle),
         "--http_port", str(http), "--grpc_port", str(port)],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        env={"PREDICTOR_FAULT_ERROR_RATE": "1.0"}, log_path=tmp_path / "predictor.log",
    )  # fmt: skip
    request = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="input",
                datatype="FP32",
                shape=[1, 10],
                contents=pb.InferTensorContents(fp32_contents=[0.0] * 10),
            )
        ],
    )
    with failing, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, metadata=[("x-request-id", "req-grpc-1")], timeout=20)
        assert info.value.code() == grpc.StatusCode.INTERNAL
    lines = [json.loads(ln) for ln in (tmp_path / "predictor.log").read_text().splitlines() if ln.strip()]
    failed = [d for d in lines if d.get("request_id") == "req-grpc-1"]
    assert [d["level"] for d in failed] == ["ERROR"], failed
    # the line names the failure and the error id the client was given (never internals in the answer)
    line = failed[0]["message"]
    assert re.match(r"gRPC call failed \(error id [0-9a-f]+-[0-9]+\): injected fault", line), failed
    assert line.split("error id ")[1].split(")")[0] in info.value.details()


def test_rest_and_grpc_model_metadata_agree(stack: Stack, gbm_bundle: Path) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    rest = httpx.get(f"{stack.predictor}/v2/models/{MODEL}", timeout=10).json()
    with grpc.insecure_channel(f"127.0.0.1:{stack.predictor_grpc}") as channel:
        answer = GRPCInferenceServiceStub(channel).ModelMetadata(
            pb.ModelMetadataRequest(name=MODEL), timeout=10
        )
    version = json.loads((gbm_bundle / "model_card.json").read_text())["version"]
    assert rest["platform"] == answer.platform == "onnxruntime"
    assert rest["versions"] == list(answer.versions) == [version]
    assert [i["name"] for i in rest["inputs"]] == [i.name for i in answer.inputs] == ["input"]
