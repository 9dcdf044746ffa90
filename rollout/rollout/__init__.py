"""Rollout CLI: guarded weight shifts and a Prometheus-gated progressive canary on an Istio VirtualService."""

__version__ = "0.1.0"
