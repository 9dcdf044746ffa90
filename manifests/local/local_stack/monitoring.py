"""Prometheus and Alertmanager like the cluster's: scrape configs from the chart's monitors, its rules.

Every rendered PodMonitor / ServiceMonitor selects local processes the way prometheus-operator
selects pods: by its ``selector`` (``matchLabels``, ``matchExpressions``) against the labels the
process's pod would carry (a ServiceMonitor through the Services it selects). Each selected process
is a static target carrying the ``__meta_kubernetes_*`` labels Kubernetes service discovery would
give it; the job applies the operator's standard relabelings and the monitor's own
``relabelings`` as rendered, so series get ``inferenceservice``, ``track``, ``component``, ``namespace``
exactly as in the cluster. One local difference: an endpoint on Istio's merged-metrics port
(``http-envoy-prom``, the sidecar's :15020 serving the app's metrics with Envoy's) scrapes the
app's own ``/metrics`` (no sidecar runs locally), dropping relabelings that only retarget the
sidecar (``__address__``, ``__metrics_path__``). Rules are the chart's files
(``helm/model-serving/files/alerts``, the PrometheusRule's one source), loaded as they are;
the local Envoy's stats are scraped as job ``envoy``.
"""

from __future__ import annotations

import re
from typing import Any

from .chart import Render
from .errors import ChartError
from .settings import StackSettings
from .topology import Program, Topology

__all__ = ["alertmanager_config", "prometheus_config", "scrape_interval", "selects"]

Obj = dict[str, Any]
ISTIO_MERGED_METRICS_PORT = "http-envoy-prom"
_RELABEL_KEYS = {
    "sourceLabels": "source_labels",
    "targetLabel": "target_label",
    "replacement": "replacement",
    "action": "action",
    "regex": "regex",
    "separator": "separator",
}
_ENDPOINT_KEYS = {"port", "path", "interval", "relabelings", "scheme", "scrapeTimeout", "honorLabels"}


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels; matchExpressions In, NotIn, Exists, DoesNotExist)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op)
        if ok is None:
            raise ChartError(f"label selector operator {op!r} is not supported by the local stack")
        if not ok:
            return False
    return True


def _relabelings(rules: list[Obj], where: str, *, merged: bool) -> list[Obj]:
    out = []
    for i, rule in enumerate(rules):
        unknown = sorted(set(rule) - set(_RELABEL_KEYS))
        if unknown:
            raise ChartError(f"{where} relabelings[{i}].{unknown[0]} is not supported by the local stack")
        item = {_RELABEL_KEYS[k]: v for k, v in rule.items()}
        if "action" in item:
            item["action"] = str(item["action"]).lower()
        if merged and str(item.get("target_label", "")) in ("__address__", "__metrics_path__"):
            continue  # retargets the Istio sidecar's merged metrics; locally the app itself is scraped
        out.append(item)
    return out


def _endpoints(monitor: Obj) -> list[Obj]:
    key = "podMetricsEndpoints" if monitor["kind"] == "PodMonitor" else "endpoints"
    endpoints: list[Obj] = monitor["spec"].get(key) or []
    for e in endpoints:
        unknown = sorted(set(e) - _ENDPOINT_KEYS)
        if unknown:
            raise ChartError(
                f"{monitor['kind']} {monitor['metadata']['name']}: endpoint field {unknown[0]} unsupported"
            )
    return endpoints


def scrape_interval(render: Render) -> str:
    monitors = render.of_kind("PodMonitor") + render.of_kind("ServiceMonitor")
    intervals = [str(e["interval"]) for m in monitors for e in _endpoints(m) if "interval" in e]
    return min(intervals, key=_seconds) if intervals else "15s"


def _seconds(d: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", d)
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)] if m else 15.0


def _targets(monitor: Obj, render: Render, programs: list[Program]) -> list[tuple[Program, dict[str, str]]]:
    """(program, extra meta labels) the monitor selects."""
    pods = [p for p in programs if p.pod_labels is not None and p.http_port]
    selector = monitor["spec"].get("selector") or {}
    if monitor["kind"] == "PodMonitor":
        return [(p, {}) for p in pods if selects(selector, p.pod_labels or {})]
    out = []
    for svc in render.of_kind("Service"):
        pod_selector = (svc.get("spec") or {}).get("selector")
        if pod_selector and selects(selector, svc["metadata"].get("labels") or {}):
            meta = {"__meta_kubernetes_service_name": svc["metadata"]["name"]}
            out += [(p, meta) for p in pods if selects({"matchLabels": pod_selector}, p.pod_labels or {})]
    return out


def prometheus_config(render: Render, topo: Topology, settings: StackSettings) -> Obj:
    ns = settings.namespace
    jobs: list[Obj] = []
    for monitor in render.of_kind("PodMonitor") + render.of_kind("ServiceMonitor"):
        kind, name = monitor["kind"], monitor["metadata"]["name"]
        targets = _targets(monitor, render, topo.programs)
        standard = [
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ]
        if kind == "ServiceMonitor":
            standard += [
                {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
                {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
            ]
        for i, endpoint in enumerate(_endpoints(monitor)):
            merged = endpoint.get("port") == ISTIO_MERGED_METRICS_PORT
            if endpoint.get("port") not in ("http", ISTIO_MERGED_METRICS_PORT):
                raise ChartError(f"{kind} {name}: port {endpoint.get('port')!r} has no local equivalent")
            static = [
                {
                    "targets": [f"127.0.0.1:{p.http_port}"],
                    "labels": {
                        **{
                            f"__meta_kubernetes_pod_label_{_sanitize(k)}": v
                            for k, v in (p.pod_labels or {}).items()
                        },
                        "__meta_kubernetes_namespace": ns,
                        "__meta_kubernetes_pod_name": p.pod_name,
                        **meta,
                    },
                }
                for p, meta in targets
            ]
            rules = _relabelings(endpoint.get("relabelings") or [], f"{kind} {name}", merged=merged)
            jobs.append(
                {
                    "job_name": f"{kind[0].lower()}{kind[1:]}/{ns}/{name}/{i}",
                    "metrics_path": "/metrics" if merged else endpoint.get("path", "/metrics"),
                    "static_configs": static,
                    "relabel_configs": standard + rules,
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
        "rule_files": [str(settings.chart / "files" / "alerts" / "*.yaml")],
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
            "group_by": ["alertname", "namespace", "inferenceservice"],
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
                    },
                    *(
                        [{"url": f"http://127.0.0.1:{settings.port('retrain-trigger')}/alertmanager"}]
                        if settings.retraining
                        else []
                    ),
                ],
            }
        ],
    }
