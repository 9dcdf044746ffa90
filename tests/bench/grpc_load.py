"""A gRPC load generator (grpc.aio, KServe's V2 stubs, raw_input_contents), run as its own process.

    python grpc_load.py HOST:PORT MODEL ROWS CONCURRENCY SECONDS
prints one JSON line: requests/s, p50/p99 latency (ms), errors, and the share of one core the
generator itself used (near 1.0 would mean the generator, not the server, is the bottleneck).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc
import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub


async def run(url: str, model: str, rows: int, concurrency: int, seconds: float) -> dict[str, float]:
    x = np.random.default_rng(0).uniform(1, 5, size=(rows, 10)).astype(np.float32)
    request = pb.ModelInferRequest(
        model_name=model,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[rows, 10])],
        raw_input_contents=[x.tobytes()],
    )
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(url) as channel:
        stub = GRPCInferenceServiceStub(channel)
        await stub.ModelInfer(request, timeout=10)  # connect + warm
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    await stub.ModelInfer(request, timeout=10)
                    latencies.append(time.perf_counter() - start)
                except grpc.aio.AioRpcError:
                    errors += 1

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    lat = np.asarray(latencies) * 1000
    return {
        "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "errors": errors,
        "loadgen_cpu": cpu / wall,
    }


if __name__ == "__main__":
    url, model, rows, conc, secs = sys.argv[1:6]
    print(json.dumps(asyncio.run(run(url, model, int(rows), int(conc), float(secs)))))
