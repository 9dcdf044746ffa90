"""Drift detection for KServe payload-logger CloudEvents.

One service for all replicas of one or more InferenceServices. It receives the CloudEvents
that KServe's agent (or our local :class:`serving_common.payload_logger.PayloadLogger`) posts,
answers at once, and off the request path compares windows of recent inputs (and predicted
scores) with the model bundle's reference sample, separately per InferenceService.

Import layering: ``__main__`` -> ``app`` -> ``ingress`` (event POSTs; ``cloudevent`` checks the
envelope) -> ``detector`` (queue, worker) -> (``body`` -> ``binary``; ``payload``, ``joiner``,
``window``, ``backends``, ``metrics``, ``sink``); ``reference`` reads the bundle; everything ->
``errors``, ``settings``.
"""

__version__ = "0.1.0"
