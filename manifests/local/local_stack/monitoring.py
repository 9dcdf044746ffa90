"""Prometheus and Alertmanager like the cluster's: scrape configs from the chart's monitors, its rules.

Each local process is a static target carrying the ``__meta_kubernetes_*`` labels Kubernetes
service discovery would give its pod (its InferenceService's labels, ``component``,
``serving.kserve.io/inferenceservice``, namespace); the scrape config then applies the
prometheus-operator's standard relabelings and the PodMonitor's / ServiceMonitor's own
``relabelings`` as rendered, so every series gets ``isvc``, ``track``, ``component``, ``namespace``
exactly as in the cluster. Rules are the chart's files (``helm/model-serving/files/alerts``, the
PrometheusRule's one source), loaded as they are. Envoy's own stats are scraped too.
"""

from __future__ import annotations

from typing import Any

from .chart import Render
from .errors import ChartError
from .settings import REPO, StackSettings
from .topology import Topology

__all__ = ["alertmanager_config", "prometheus_config", "scrape_interval"]

Obj = dict[str, Any]
_RELABEL_KEYS = {
    "sourceLabels": "source_labels",
    "targetLabel": "target_label",
    "replacement": "replacement",
    "action": "action",
    "regex": "regex",
    "separator": "separator",
}


def _relabelings(rules: list[Obj], where: str) -> list[Obj]:
    out = []
    for i, rule in enumerate(rules):
        unknown = sorted(set(rule) - set(_RELABEL_KEYS))
        if unknown:
            raise ChartError(f"{where} relabelings[{i}].{unknown[0]} is not supported by the local stack")
        item = {_RELABEL_KEYS[k]: v for k, v in rule.items()}
        if "action" in item:
            item["action"] = str(item["action"]).lower()
        out.append(item)
    return out


def _endpoint(monitor: Obj, key: str) -> Obj:
    endpoints = monitor["spec"].get(key) or []
    if len(endpoints) != 1:
        raise ChartError(f"{monitor['kind']} {monitor['metadata']['name']}: expected one endpoint")
    endpoint: Obj = endpoints[0]
    return endpoint


def scrape_interval(render: Render) -> str:
    return str(_endpoint(render.one("PodMonitor"), "podMetricsEndpoints").get("interval", "15s"))


def prometheus_config(render: Render, topo: Topology, settings: StackSettings) -> Obj:
    ns = settings.namespace
    pod_monitor, service_monitor = render.one("PodMonitor"), render.one("ServiceMonitor")
    jobs: list[Obj] = []
    for monitor, key, kind, standard in (
        (
            pod_monitor,
            "podMetricsEndpoints",
            "pod",
            [
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ],
        ),
        (
            service_monitor,
            "endpoints",
            "service",
            [
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
                {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
            ],
        ),
    ):
        endpoint = _endpoint(monitor, key)
        name = f"{kind}Monitor/{ns}/{monitor['metadata']['name']}/0"
        targets = [
            {"targets": [f"127.0.0.1:{p.scrape_port}"], "labels": p.scrape_labels or {}}
            for p in topo.programs
            if p.monitor == kind
        ]
        jobs.append(
            {
                "job_name": name,
                "metrics_path": endpoint.get("path", "/metrics"),
                "static_configs": targets,
                "relabel_configs": standard
                + _relabelings(
                    endpoint.get("relabelings") or [], f"{monitor['kind']} {monitor['metadata']['name']}"
                ),
            }
        )
    jobs.append(
        {
            "job_name": "envoy",
            "metrics_path": "/stats/prometheus",
            "static_configs": [
                {"targets": [f"127.0.0.1:{settings.port('envoy-admin')}"], "labels": {"component": "envoy"}}
            ],
        }
    )
    interval = scrape_interval(render)
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(REPO / "helm" / "model-serving" / "files" / "alerts" / "*.yaml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{settings.port('alertmanager')}"]}]}
            ]
        },
        "scrape_configs": jobs,
    }


def alertmanager_config(settings: StackSettings) -> Obj:
    """Every alert to the local receiver's ``/alertmanager`` (listed with GET /deliveries)."""
    return {
        "route": {
            "receiver": "local",
            "group_by": ["alertname", "namespace", "inferenceservice", "isvc"],
            "group_wait": "1s",
            "group_interval": "5s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "local",
                "webhook_configs": [
                    {
                        "url": f"http://127.0.0.1:{settings.port('receiver')}/alertmanager",
                        "send_resolved": True,
                    }
                ],
            }
        ],
    }
