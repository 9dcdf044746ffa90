"""Names of the CloudEvents that KServe's payload logger sends (and our local logger copies).

KServe's agent (``pkg/logger``) posts one event for the request and one for the response,
both with the same ``ce-id``; the extensions carry the InferenceService's identity. Our
local logger (``--logger_url`` on predictor and transformer) and the drift detector use
these names so that they match the agent exactly.
"""

from __future__ import annotations

__all__ = [
    "EXT_COMPONENT",
    "EXT_ENDPOINT",
    "EXT_INFERENCE_SERVICE",
    "EXT_NAMESPACE",
    "EXT_TRACE_ID",
    "REQUEST_TYPE",
    "RESPONSE_TYPE",
    "SOURCE_PREFIX",
]

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
SOURCE_PREFIX = "http://localhost:9081/"
"""The agent sets ``source`` to its own address; any value is accepted on receipt."""

EXT_INFERENCE_SERVICE = "inferenceservicename"
EXT_NAMESPACE = "namespace"
EXT_COMPONENT = "component"
EXT_ENDPOINT = "endpoint"
EXT_TRACE_ID = "traceid"
