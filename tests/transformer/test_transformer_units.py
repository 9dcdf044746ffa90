"""In-process unit tests: request decoding, header forwarding, error mapping, flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput
from serving_common import Bundle, Problem, records
from serving_common.framework.predictor_client import PredictorClient
from serving_common.framework.records_model import MAX_LISTED_PROBLEMS, describe_problems
from serving_common.framework.startup import explicit_protocol
from serving_common.framework.status import (
    PredictorFailed,
    PredictorTimeout,
    PredictorUnavailable,
    grpc_code,
    http_status,
)
from serving_common.headers import forwarded, new_id, request_id
from transformer.__main__ import build_parser

RECORD = {"age": 59.0, "sex": "female", "bmi": 32.1, "bp": 101.0}


def test_v1_records() -> None:
    assert records.from_v1({"instances": [RECORD]}, 10) == [RECORD]
    assert records.from_v1(b'{"instances": [{"age": 1}]}', 10) == [{"age": 1}]
    for body, message in [
        ({"instances": [RECORD] * 11}, "holds 11 records; at most 10"),
        ({"instances": []}, "holds no records"),
        ({"instances": "x"}, "must be a list"),
        ([RECORD], '{"instances"'),
        (b"{", "not JSON"),
    ]:
        with pytest.raises(records.RequestInvalid, match=None) as err:
            records.from_v1(body, 10)
        assert message in str(err.value)


def test_v2_columns_become_records_with_missing_values() -> None:
    inputs = [
        InferInput("age", [2], "FP64", [59.0, 40.0]),
        InferInput("sex", [2, 1], "BYTES", [[b"female"], [b"male"]]),
        InferInput("bmi", [2], "INT64", [32, 20]),
        InferInput("glu", [2], "FP32", [np.nan, 80.0]),
    ]
    assert records.from_v2(inputs, 10) == [
        {"age": 59.0, "sex": "female", "bmi": 32, "glu": None},
        {"age": 40.0, "sex": "male", "bmi": 20, "glu": 80.0},
    ]


def test_v2_json_records_input() -> None:
    import json

    one = InferInput("records", [2], "BYTES", [json.dumps(RECORD), json.dumps([RECORD, RECORD])])
    assert records.from_v2([one], 10) == [RECORD, RECORD, RECORD]
    named = InferInput("rows", [1], "BYTES", [json.dumps(RECORD)], parameters={"content_type": "json"})
    assert records.from_v2([named], 10) == [RECORD]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "the request has no inputs"),
        (
            [InferInput("records", [1], "BYTES", ["{}"]), InferInput("age", [1], "FP64", [1.0])],
            "cannot be combined with other inputs (['age'])",
        ),
        (
            [InferInput("age", [1], "FP64", [1.0]), InferInput("age", [1], "FP64", [2.0])],
            "given more than once",
        ),
        ([InferInput("age", [3], "FP64", [1.0, 2.0])], "cannot be read"),
        ([InferInput("records", [1], "BYTES", ["[1, "])], "element 0 is not valid JSON"),
        ([InferInput("age", [11], "FP64", [1.0] * 11)], "at most 10"),
    ],
)
def test_v2_bad_shapes(inputs: list[Any], message: str) -> None:
    with pytest.raises(records.RequestInvalid) as err:
        records.from_v2(inputs, 10)
    assert message in str(err.value)


def test_columns_and_records_vectorise_the_same(gbm_bundle: Path) -> None:
    spec = Bundle.open(gbm_bundle).spec()
    rows = [RECORD, {**RECORD, "sex": "male", "glu": 90.0}]
    columns = [
        InferInput(f.name, [2], "BYTES" if f.type == "categorical" else "FP64", [r.get(f.name) for r in rows])
        for f in spec.features
    ]
    for c in columns:
        if c.datatype == "FP64":
            c.data = [np.nan if v is None else v for v in c.data]
    np.testing.assert_array_equal(spec.vectorise(records.from_v2(columns, 10)), spec.vectorise(rows))


def test_only_trace_auth_and_request_id_headers_are_forwarded() -> None:
    incoming = {
        "X-Request-Id": "r1",
        "traceparent": "00-a-b-01",
        "tracestate": "k=v",
        "Authorization": "Bearer t",
        "X-B3-TraceId": "t",
        "x-b3-spanid": "s",
        "b3": "t-s-1",
        "cookie": "c",
        "content-type": "application/json",
        "host": "x",
    }
    out = forwarded(incoming, "r1")
    assert out == {
        "x-request-id": "r1",
        "traceparent": "00-a-b-01",
        "tracestate": "k=v",
        "authorization": "Bearer t",
        "x-b3-traceid": "t",
        "x-b3-spanid": "s",
        "b3": "t-s-1",
    }
    assert forwarded({}, "new")["x-request-id"] == "new"
    assert request_id({"X-Request-ID": "h"}, "v2") == "h"
    assert request_id({}, "v2") == "v2"
    made = {request_id(None) for _ in range(1000)}
    assert len(made) == 1000 and all(len(r) == len(new_id()) == 33 for r in made)


def test_problem_list_is_bounded_but_counted() -> None:
    problems = [Problem(i, "age", "is missing") for i in range(MAX_LISTED_PROBLEMS + 5)]
    message = describe_problems(problems, MAX_LISTED_PROBLEMS + 5)
    assert message.startswith(f"{MAX_LISTED_PROBLEMS + 5} problem(s) in {MAX_LISTED_PROBLEMS + 5} of ")
    assert message.endswith("; and 5 more")
    assert "record 0, field 'age': is missing" in message


def test_protocol_flag_is_read_only_when_given() -> None:
    assert explicit_protocol(["--model_name", "m"]) is None
    assert explicit_protocol(["--predictor_protocol", "v2"]) == "v2"
    assert explicit_protocol(["--protocol=v1"]) == "v1"
    args = build_parser().parse_args(
        ["--model_dir", "/b", "--predictor_host", "h:1", "--logger_url", "http://x"]
    )
    assert args.model_dir == "/b" and args.predictor_host == "h:1" and args.logger_url == "http://x"


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_predictor_errors_keep_their_meaning() -> None:
    client = PredictorClient(host="p:1", protocol="grpc-v2", model_name="m", input_name="input", timeout=2)
    cases = [
        (_RpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad rows"), InvalidInput, 400, "INVALID_ARGUMENT"),
        (_RpcError(grpc.StatusCode.UNAVAILABLE, "down"), PredictorUnavailable, 503, "UNAVAILABLE"),
        (_RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "slow"), PredictorTimeout, 504, "DEADLINE_EXCEEDED"),
        (_RpcError(grpc.StatusCode.INTERNAL, "boom"), PredictorFailed, 502, "INTERNAL"),
    ]
    for error, kind, status, code in cases:
        mapped = client.from_grpc(error)
        assert isinstance(mapped, kind) and http_status(mapped) == status and grpc_code(mapped) == code
    assert "bad rows" in str(client.from_grpc(cases[0][0]))
    for status, kind in [
        (400, InvalidInput),
        (503, PredictorUnavailable),
        (504, PredictorTimeout),
        (500, PredictorFailed),
    ]:
        mapped = client.from_http(status, b'{"error": "predictor said %d"}' % status)
        assert isinstance(mapped, kind)
        assert kind is PredictorTimeout or f"predictor said {status}" in str(mapped)
    assert "HTTP 502: <html>bad gateway" in str(client.from_http(502, b"<html>bad gateway"))


def test_unknown_predictor_protocol_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"unknown predictor protocol 'rest'; expected one of \['grpc-v2', 'v2', 'v1'\]"
    ):
        PredictorClient(host="p:1", protocol="rest", model_name="m", timeout=2)


def test_column_vectoriser_agrees_with_the_record_vectoriser(gbm_bundle: Path) -> None:
    """Same matrix, same problems in the same order, for good and bad columns of every kind."""
    bundle = Bundle.open(gbm_bundle)
    spec = bundle.spec()
    rows = [spec.decode_row(row.tolist()) for row in bundle.reference()[:4]]
    cases: list[list[Any]] = [
        [
            InferInput(g.name, [4], "BYTES" if g.type == "categorical" else "FP64", [r[g.name] for r in rows])
            for g in spec.features
        ]
    ]
    for f in spec.features:
        if f.type == "categorical":
            column = InferInput(f.name, [4], "BYTES", [b"female", b"male", b"alien", b"female"])
        else:
            column = InferInput(f.name, [4], "FP64", [1.0, np.nan, np.inf, 1e9])
        others = [
            InferInput(g.name, [4], "BYTES" if g.type == "categorical" else "FP64", [r[g.name] for r in rows])
            for g in spec.features
            if g.name != f.name
        ]
        cases.append([column, *others])
        cases.append(others)  # the feature's column is missing altogether
    cases.append([*cases[0], InferInput("colour", [4], "BYTES", [b"red"] * 4)])  # an extra column
    cases.append(
        [InferInput(f.name, [4], "INT64", [1, 2, 3, 400]) for f in spec.features]
    )  # ints, wrong types
    counts = []
    for inputs in cases:
        columns = records.columns_from_v2(inputs, 10)
        assert columns is not None
        by_columns, column_problems = spec.check_columns(columns, 4)
        by_records, record_problems = spec.check(records.from_v2(inputs, 10))
        assert [str(p) for p in column_problems] == [str(p) for p in record_problems]
        valid = sorted({p.index for p in record_problems} ^ {0, 1, 2, 3})
        np.testing.assert_array_equal(by_columns[valid], by_records[valid])
        counts.append(len(record_problems))
    # all good; an extra column is a problem in every record; bad values and missing required columns too
    assert counts[0] == 0 and counts[-2] == 4 and sum(c > 0 for c in counts) >= len(spec.features)
    assert records.columns_from_v2([InferInput("records", [1], "BYTES", [b"{}"])], 10) is None


def test_one_parser_reads_every_predictor_answer() -> None:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from serving_common.framework import scores

    probabilities = np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32)
    raw = pb.ModelInferResponse(
        model_version="v7",
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name="label", datatype="INT64", shape=[2]),
            pb.ModelInferResponse.InferOutputTensor(name="probabilities", datatype="FP32", shape=[2, 2]),
        ],
        raw_output_contents=[np.array([1, 0], dtype=np.int64).tobytes(), probabilities.tobytes()],
    )
    rest = {
        "model_version": "v7",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [2, 2],
                "data": probabilities.reshape(-1).tolist(),
            },
        ],
    }
    v1 = {
        "predictions": [
            {"label": 1, "probabilities": [0.25, 0.75]},
            {"label": 0, "probabilities": [0.9, 0.1]},
        ]
    }
    for answer, version in [
        (scores.from_grpc(raw, "p"), "v7"),
        (scores.from_v2(rest, "p"), "v7"),
        (scores.from_v1(v1, "p"), None),
        (scores.from_v1({"predictions": probabilities.tolist()}, "p"), None),  # labels from argmax
    ]:
        assert answer.labels.tolist() == [1, 0] and answer.model_version == version
        np.testing.assert_array_equal(answer.probabilities, probabilities)
    for bad, message in [
        (
            lambda: scores.from_v2({"outputs": [rest["outputs"][0]]}, "p"),
            "p answered without 'probabilities'",
        ),
        (lambda: scores.from_v2({"error": "x"}, "p"), "p answered without 'outputs'"),
        (lambda: scores.from_v1({"predictions": []}, "p"), "without per-row 'label' and 'probabilities'"),
        (
            lambda: scores.from_v2({"outputs": [{**rest["outputs"][1], "shape": [4]}]}, "p"),
            "'probabilities' from p has shape [4]",
        ),
    ]:
        with pytest.raises(PredictorFailed) as err:
            bad()
        assert message in str(err.value)
