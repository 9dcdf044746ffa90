"""The whole system on loopback, derived from the chart: ``make up`` / ``make down`` / ``make status``.

Run as ``PYTHONPATH=manifests/local .venv/bin/python -m local_stack up|down|status`` (the Makefile
does). Layering: ``cli`` -> ``stack`` (lifecycle) -> ``chart`` (helm template), ``topology``
(processes and ports from the rendered objects), ``envoy`` (VirtualService -> Envoy),
``monitoring`` (Prometheus and Alertmanager), ``supervisor`` (supervisord); ``routes`` (the
VirtualService watcher, Envoy's "istiod"), ``receiver`` (the local notification sink) and
``tracestore`` (the OTLP/HTTP trace store, decoding with ``otlp``) run as processes of the stack;
``tracetree`` prints a stored trace (``python -m local_stack trace``).
"""
