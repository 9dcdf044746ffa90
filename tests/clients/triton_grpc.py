"""Run tritonclient.grpc in its own process and print the result as JSON.

tritonclient.grpc and kserve both register the protobuf package ``inference`` in the default
descriptor pool, so the two cannot be imported into one process (``duplicate symbol
'inference.ServerLiveRequest'``). Tests that use the real tritonclient gRPC client therefore
call it through this script: a real client over a real socket, one process per call.

    python tests/clients/triton_grpc.py URL MODEL REQUEST.json
REQUEST.json: {"inputs": [{"name", "datatype", "shape", "npy": path}], "outputs": [...] | null,
"request_id": str | null, "metadata": bool}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException


def main(url: str, model: str, request_path: str) -> int:
    spec = json.loads(Path(request_path).read_text())
    client = grpcclient.InferenceServerClient(url)
    result: dict[str, object] = {}
    try:
        if spec.get("metadata"):
            result["live"] = client.is_server_live()
            result["ready"] = client.is_server_ready()
            result["model_ready"] = client.is_model_ready(model)
            result["metadata"] = client.get_model_metadata(model, as_json=True)
        inputs = []
        for item in spec["inputs"]:
            inp = grpcclient.InferInput(item["name"], item["shape"], item["datatype"])
            inp.set_data_from_numpy(np.load(item["npy"]))
            inputs.append(inp)
        outputs = None
        if spec.get("outputs"):
            outputs = [grpcclient.InferRequestedOutput(n) for n in spec["outputs"]]
        response = client.infer(model, inputs, outputs=outputs, request_id=spec.get("request_id") or "")
        raw = response.get_response()
        result["id"] = raw.id
        result["model_version"] = raw.model_version
        result["outputs"] = {o.name: response.as_numpy(o.name).tolist() for o in raw.outputs}
    except InferenceServerException as e:
        result["error"] = {"status": e.status(), "message": e.message()}
    finally:
        client.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
