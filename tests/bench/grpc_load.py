"""A gRPC load generator (grpc.aio, KServe's V2 stubs, raw_input_contents), run as its own process.

    python grpc_load.py HOST:PORT MODEL ROWS CONCURRENCY SECONDS
prints one JSON line, a :class:`loadgen.Run`: requests answered, seconds, p50/p99 latency (ms),
the count of every gRPC status seen (any code but OK fails the bench), and in ``extra`` the share
of one core the generator itself used (near 1.0 means the generator, not the server, limits).
:func:`infer_once` is the same request made once, synchronously, for the sanity check.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Run, sample_rows

_DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}
_CONTENTS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
}


def request(model: str, x: np.ndarray) -> pb.ModelInferRequest:
    """A V2 ``ModelInfer`` request carrying ``x`` (float32 ``[n, features]``) as raw contents."""
    return pb.ModelInferRequest(
        model_name=model,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=list(x.shape))],
        raw_input_contents=[np.ascontiguousarray(x, dtype=np.float32).tobytes()],
    )


def outputs(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Output name -> array, whether the server answered with raw or typed contents."""
    result = {}
    for i, out in enumerate(response.outputs):
        shape = list(out.shape)
        if response.raw_output_contents:
            arr = np.frombuffer(response.raw_output_contents[i], dtype=_DTYPES[out.datatype])
        else:
            arr = np.asarray(getattr(out.contents, _CONTENTS[out.datatype]), dtype=_DTYPES[out.datatype])
        result[out.name] = arr.reshape(shape)
    return result


def infer_once(url: str, model: str, x: np.ndarray, timeout: float = 30.0) -> dict[str, np.ndarray]:
    with grpc.insecure_channel(url) as channel:
        response = GRPCInferenceServiceStub(channel).ModelInfer(request(model, x), timeout=timeout)
    return outputs(response)


async def run(url: str, model: str, rows: int, concurrency: int, seconds: float) -> Run:
    message = request(model, sample_rows(rows))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(url) as channel:
        stub = GRPCInferenceServiceStub(channel)
        await stub.ModelInfer(message, timeout=10)  # connect + warm (raises if the target is broken)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    await stub.ModelInfer(message, timeout=10)
                    statuses["OK"] += 1
                except grpc.aio.AioRpcError as e:
                    statuses[e.code().name] += 1
                latencies.append(time.perf_counter() - start)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    lat = np.asarray(latencies) * 1000
    return Run(
        requests=len(latencies),
        seconds=wall,
        p50_ms=float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        p99_ms=float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        statuses=dict(statuses),
        extra={"loadgen_cpu": cpu / wall},
    )


if __name__ == "__main__":
    url, model, rows, conc, secs = sys.argv[1:6]
    print(json.dumps(asyncio.run(run(url, model, int(rows), int(conc), float(secs))).to_json()))
