"""The whole system on loopback, derived from the chart: ``make up`` / ``make down`` / ``make status``.

Run as ``PYTHONPATH=manifests/local .venv/bin/python -m local_stack up|down|status`` (the Makefile
does). Layering: ``cli`` -> ``stack`` (lifecycle) -> ``chart`` (helm template), ``topology``
(processes and ports from the rendered objects), ``envoy`` (VirtualService -> Envoy),
``monitoring`` (Prometheus and Alertmanager), ``supervisor`` (supervisord); ``routes`` (the
VirtualService watcher, Envoy's "istiod") and ``receiver`` (the local notification sink) run as
processes of the stack.
"""
