"""The chart's VirtualService as Envoy configuration: routes (RDS from a watched file) and a bootstrap.

The translator covers exactly the VirtualService fields the chart renders and refuses anything
else with the field's path, so a chart change that the local stack would silently mistranslate
fails ``make up`` (and its test) instead:

==========================================  ===============================================
VirtualService (networking.istio.io/v1)      Envoy (route.v3)
==========================================  ===============================================
``spec.hosts``, ``spec.gateways``            accepted; the local Envoy is the only gateway and
                                             answers every host (domain ``*``)
``http[]`` in order, ``name``                routes in order (one per ``match`` entry), ``name``
``match[].uri.exact|prefix|regex``           ``match.path|prefix|safe_regex`` (no uri: prefix ``/``)
``match[].headers.H.exact|prefix|regex``     ``match.headers[].string_match``
``route[].destination.host/port.number``     cluster ``outbound|PORT||HOST`` (Istio's name)
``route[].weight``                           ``weighted_clusters`` (weight 0 left out)
``mirror`` + ``mirrorPercentage.value``      ``request_mirror_policies`` with a runtime fraction
``timeout``                                  ``route.timeout``
``retries.attempts/perTryTimeout/retryOn``   ``retry_policy`` (status codes -> ``retriable_status_codes``)
==========================================  ===============================================
"""

from __future__ import annotations

import re
from typing import Any

from .errors import TranslateError

__all__ = ["ROUTES_VERSION_HEADER", "ROUTE_CONFIG_NAME", "bootstrap", "cluster_name", "translate"]

Obj = dict[str, Any]
ROUTE_CONFIG_NAME = "model-serving"
#: Response header naming the VirtualService resourceVersion whose routes answered
ROUTES_VERSION_HEADER = "x-local-routes-version"
_EXT = "type.googleapis.com/envoy.extensions"
_TOP = {"apiVersion", "kind", "metadata", "spec"}
_SPEC = {"hosts", "gateways", "http"}
_HTTP = {"name", "match", "route", "timeout", "retries", "mirror", "mirrorPercentage"}
_MATCH = {"uri", "headers"}
_STRING = {"exact", "prefix", "regex"}
_DEST = {"destination", "weight"}
_DESTINATION = {"host", "port"}
_PORT = {"number"}
_RETRIES = {"attempts", "perTryTimeout", "retryOn"}
_PERCENT = {"value"}
# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions (Istio passes them through)
_RETRY_ON = {
    "5xx", "gateway-error", "reset", "connect-failure", "envoy-ratelimited", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}  # fmt: skip


def cluster_name(host: str, port: int) -> str:
    return f"outbound|{port}||{host}"


def _only(obj: Any, allowed: set[str], path: str) -> Obj:
    if not isinstance(obj, dict):
        raise TranslateError(f"VirtualService {path}: expected a mapping, got {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise TranslateError(
            f"VirtualService field {path}.{unknown[0]} is not supported by the local Envoy translator "
            f"(supported at {path}: {', '.join(sorted(allowed))})"
        )
    return obj


def _duration(value: Any, path: str) -> str:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(value))
    if not m:
        raise TranslateError(f"VirtualService {path}: {value!r} is not a duration (e.g. 10s, 500ms)")
    seconds = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return f"{seconds:.3f}s"


def _string_match(spec: Any, path: str) -> Obj:
    spec = _only(spec, _STRING, path)
    if len(spec) != 1:
        raise TranslateError(f"VirtualService {path}: expected exactly one of exact, prefix, regex")
    ((kind, value),) = spec.items()
    return {"safe_regex": {"regex": str(value)}} if kind == "regex" else {kind: str(value)}


def _cluster(dest: Any, path: str, clusters: set[str]) -> str:
    dest = _only(dest, _DESTINATION, path)
    host = dest.get("host")
    port = _only(dest.get("port") or {"number": 80}, _PORT, f"{path}.port").get("number", 80)
    name = cluster_name(str(host), int(port))
    if name not in clusters:
        raise TranslateError(
            f"VirtualService {path}: host {host} port {port} is not a service of the local stack"
        )
    return name


def _action(http: Obj, path: str, clusters: set[str]) -> Obj:
    dests = http.get("route")
    if not isinstance(dests, list) or not dests:
        raise TranslateError(f"VirtualService {path}.route: expected at least one destination")
    weighted: list[Obj] = []
    for j, d in enumerate(dests):
        d = _only(d, _DEST, f"{path}.route[{j}]")
        name = _cluster(d.get("destination"), f"{path}.route[{j}].destination", clusters)
        weight = d.get("weight", 100 if len(dests) == 1 else 0)
        if not isinstance(weight, int) or not 0 <= weight <= 100:
            raise TranslateError(f"VirtualService {path}.route[{j}].weight: expected 0-100, got {weight!r}")
        if weight > 0:
            weighted.append({"name": name, "weight": weight})
    if not weighted:
        raise TranslateError(f"VirtualService {path}.route: every destination has weight 0")
    action: Obj = (
        {"cluster": weighted[0]["name"]}
        if len(weighted) == 1
        else {"weighted_clusters": {"clusters": weighted}}
    )
    if "timeout" in http:
        action["timeout"] = _duration(http["timeout"], f"{path}.timeout")
    if "retries" in http:
        retries = _only(http["retries"], _RETRIES, f"{path}.retries")
        attempts = int(retries.get("attempts", 0))
        if attempts > 0:
            on = [t.strip() for t in str(retries.get("retryOn", "connect-failure")).split(",") if t.strip()]
            codes = [int(t) for t in on if t.isdigit()]
            unknown = [t for t in on if not t.isdigit() and t not in _RETRY_ON]
            if unknown:
                raise TranslateError(
                    f"VirtualService {path}.retries.retryOn: unknown condition {unknown[0]!r}"
                )
            conditions = [t for t in on if not t.isdigit()] + (["retriable-status-codes"] if codes else [])
            policy: Obj = {"retry_on": ",".join(dict.fromkeys(conditions)), "num_retries": attempts}
            if codes:
                policy["retriable_status_codes"] = codes
            if "perTryTimeout" in retries:
                policy["per_try_timeout"] = _duration(
                    retries["perTryTimeout"], f"{path}.retries.perTryTimeout"
                )
            action["retry_policy"] = policy
    if "mirror" in http:
        mirror = _cluster(http["mirror"], f"{path}.mirror", clusters)
        percent = _only(http.get("mirrorPercentage") or {"value": 100}, _PERCENT, f"{path}.mirrorPercentage")
        value = float(percent.get("value", 100))
        if not 0 <= value <= 100:
            raise TranslateError(f"VirtualService {path}.mirrorPercentage.value: expected 0-100, got {value}")
        fraction = {"numerator": round(value * 10_000), "denominator": "MILLION"}
        action["request_mirror_policies"] = [
            {"cluster": mirror, "runtime_fraction": {"default_value": fraction}}
        ]
    elif "mirrorPercentage" in http:
        raise TranslateError(f"VirtualService {path}.mirrorPercentage: needs {path}.mirror")
    return action


def _matches(http: Obj, path: str) -> list[Obj]:
    entries = http.get("match") or [{}]
    out: list[Obj] = []
    for k, m in enumerate(entries):
        where = f"{path}.match[{k}]"
        m = _only(m, _MATCH, where)
        match: Obj = {"prefix": "/"}
        if "uri" in m:
            uri = _string_match(m["uri"], f"{where}.uri")
            match = {"path": uri["exact"]} if "exact" in uri else uri
        headers = _only(m.get("headers") or {}, set(m.get("headers") or {}), f"{where}.headers")
        if headers:
            match["headers"] = [
                {"name": h, "string_match": _string_match(v, f"{where}.headers.{h}")}
                for h, v in headers.items()
            ]
        out.append(match)
    return out


def translate(vs: Obj, clusters: set[str]) -> Obj:
    """The RDS discovery response (``version_info`` = the VirtualService's resourceVersion)."""
    _only(vs, _TOP, "")
    if vs.get("kind") != "VirtualService":
        raise TranslateError(f"expected a VirtualService, got kind {vs.get('kind')!r}")
    spec = _only(vs.get("spec"), _SPEC, "spec")
    routes: list[Obj] = []
    for i, http in enumerate(spec.get("http") or []):
        path = f"spec.http[{i}]"
        http = _only(http, _HTTP, path)
        name = str(http.get("name", f"http-{i}"))
        action = _action(http, path, clusters)
        for k, match in enumerate(_matches(http, path)):
            routes.append({"name": name if k == 0 else f"{name}-{k}", "match": match, "route": action})
    if not routes:
        raise TranslateError("VirtualService spec.http: no routes")
    meta = vs.get("metadata") or {}
    return {
        "version_info": str(meta.get("resourceVersion", "0")),
        "resources": [
            {
                "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                "name": ROUTE_CONFIG_NAME,
                # the revision on every answer (and in the config's hash: Envoy ignores an update
                # whose routes hash like the current ones, so its version would not move)
                "response_headers_to_add": [
                    {"header": {"key": ROUTES_VERSION_HEADER, "value": str(meta.get("resourceVersion", "0"))}}
                ],
                "virtual_hosts": [
                    {"name": str(meta.get("name", "local")), "domains": ["*"], "routes": routes}
                ],
            }
        ],
    }


def bootstrap(
    *, listen_port: int, admin_port: int, rds_file: str, access_log: str, services: dict[str, dict[int, int]]
) -> Obj:
    """Static listener and clusters (one per Service port), routes from ``rds_file`` (watched directory)."""
    clusters = [
        {
            "name": cluster_name(host, port),
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": cluster_name(host, port),
                "endpoints": [
                    {"lb_endpoints": [{"endpoint": {"address": _address(local)}}]},
                ],
            },
        }
        for host, ports in sorted(services.items())
        for port, local in sorted(ports.items())
    ]
    hcm = {
        "@type": f"{_EXT}.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress_http",
        "codec_type": "AUTO",
        "rds": {
            "route_config_name": ROUTE_CONFIG_NAME,
            "config_source": {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": rds_file,
                    "watched_directory": {"path": rds_file.rsplit("/", 1)[0]},
                },
            },
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
        "access_log": [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log,
                },
            }
        ],
    }
    return {
        "node": {"id": "local-stack", "cluster": "local-stack"},
        "admin": {"address": _address(admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": _address(listen_port),
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ]
                        }
                    ],
                }
            ],
            "clusters": clusters,
        },
    }


def _address(port: int) -> Obj:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}
