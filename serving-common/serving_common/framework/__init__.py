"""The KServe-dependent half of ``serving_common``: what the KServe-based components (predictor,
transformer, explainer) share on top of KServe, gRPC and FastAPI.

* ``status``: the hop's error types and the one table mapping exceptions to HTTP / gRPC codes;
* ``rest``: REST bodies (JSON with ``NaN``, V2 JSON plus binary tensors) and route installation;
* ``records_model``: the KServe ``Model`` of raw records (transformer and explainer);
* ``predictor_client``: the one client of the predictor hop (gRPC V2, REST V2 or V1), with
  ``scores`` (the one parser of the predictor's answers) and ``http_pool`` (its keep-alive pool);
* ``front``: inference routes answered at the ASGI level before KServe's app, on uvloop;
* ``grpc_server``: KServe's gRPC server whose port is never shared, with ``x-request-id`` on
  ``ModelInfer`` answers; ``metadata``: V2 model metadata (platform, versions, raw inputs);
* ``startup``: the start of ``python -m transformer`` / ``python -m explainer``.

The pure contract (``serving_common`` itself) never imports this subpackage, so it stays
importable where KServe is not installed (the drift detector's virtualenv); ``make lint``
enforces that with import-linter.
"""
