"""The chart lints, renders every ci/ scenario, and every rendered document is valid and coherent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from chart_support import (
    CHART,
    CI_SCENARIOS,
    NAMESPACE,
    REPO,
    Helm,
    HelmError,
    by_kind,
    kserve_services,
    pod_specs,
    service_fqdn,
    validate_all,
)

SCENARIO_IDS = [p.name.removesuffix("-values.yaml") for p in CI_SCENARIOS]
REQUIRED_SCENARIOS = {
    "default", "no-canary", "canary-10-90", "canary-100", "shadow", "auth", "explainer-off",
}  # fmt: skip


@pytest.fixture(scope="module", params=CI_SCENARIOS, ids=SCENARIO_IDS)
def scenario(request: pytest.FixtureRequest, helm: Helm) -> tuple[Path, list[dict[str, Any]]]:
    return request.param, helm.template(request.param)


def _values(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def test_every_required_scenario_exists() -> None:
    assert set(SCENARIO_IDS) >= REQUIRED_SCENARIOS


def test_lint_strict_every_scenario(helm: Helm) -> None:
    helm.run("lint", "--strict", str(CHART))
    for values in CI_SCENARIOS:
        proc = helm.run("lint", "--strict", str(CHART), "-f", str(values), check=False)
        assert proc.returncode == 0, f"{values.name}:\n{proc.stdout}\n{proc.stderr}"


def test_documents_match_schemas(scenario: tuple[Path, list[dict[str, Any]]], crds_dir: Path) -> None:
    _, docs = scenario
    problems = validate_all(docs, crds_dir)
    assert not problems, "\n".join(map(str, problems))


def test_validator_rejects_unknown_fields(default_docs: list[dict[str, Any]], crds_dir: Path) -> None:
    """The validation is strict: a misplaced field (e.g. ``spec.logger``) is caught in every family."""
    import copy

    isvc = copy.deepcopy(by_kind(default_docs, "InferenceService")[0])
    isvc["spec"]["logger"] = {"mode": "all"}
    vs = copy.deepcopy(by_kind(default_docs, "VirtualService")[0])
    vs["spec"]["http"][0]["weight"] = 5
    deploy = copy.deepcopy(by_kind(default_docs, "Deployment")[0])
    deploy["spec"]["template"]["spec"]["containers"][0]["probe"] = {}
    rule = copy.deepcopy(by_kind(default_docs, "PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0]["expression"] = "up"
    problems = {p.document: p.messages for p in validate_all([isvc, vs, deploy, rule], crds_dir)}
    assert len(problems) == 4, problems
    assert any(
        "logger" in m
        for m in problems[f"serving.kserve.io/v1beta1/InferenceService {isvc['metadata']['name']}"]
    )


def test_inference_services_standard_mode_cluster_local(scenario: tuple[Path, list[dict[str, Any]]]) -> None:
    path, docs = scenario
    isvcs = by_kind(docs, "InferenceService")
    canary = _values(path).get("canary", {}).get("enabled", True)
    assert [i["metadata"]["name"] for i in isvcs] == ["model-serving-stable"] + (
        ["model-serving-canary"] if canary else []
    )
    for isvc in isvcs:
        meta = isvc["metadata"]
        assert meta["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
        assert meta["labels"]["networking.kserve.io/visibility"] == "cluster-local"
        predictor = isvc["spec"]["predictor"]["containers"][0]
        assert predictor["name"] == "kserve-container"
        names = {}
        for component in ("predictor", "transformer", "explainer"):
            if component in isvc["spec"]:
                args = isvc["spec"][component]["containers"][0]["args"]
                names[component] = args[args.index("--model_name") + 1]
                if component in ("transformer", "explainer"):
                    protocol = args[args.index("--predictor_protocol") + 1]
                    host, port = args[args.index("--predictor_host") + 1].split(":")
                    assert host == service_fqdn(f"{meta['name']}-predictor")
                    # KServe's predictor Service: port 80 (HTTP, via the agent when logging), 8081 gRPC
                    assert (protocol, port) in (("v2", "80"), ("grpc-v2", "8081")), (
                        component,
                        protocol,
                        port,
                    )
                    if component == "explainer":  # never through the agent: no logged perturbations
                        assert protocol == "grpc-v2"
        assert set(names.values()) == {"diabetes-risk"}, names


# What the VirtualService routes (issue 15): one `match` entry per served URI regex (RE2, full
# match on the path), in this order; everything else matches no route and Istio answers 404.
SERVED_URIS = [
    "^/v1/models/[^/:]+(:predict)?$",
    "^/v2/models/[^/]+(/versions/[^/]+)?(/infer|/ready)?$",
    "^/v2/health/(live|ready)$",
    "^/v2/?$",
]
EXPLAIN_URIS = ["^/v1/models/[^/]+:explain$", "^/v2/models/[^/]+/explain$"]
FEEDBACK_URIS = ["^/v1/models/[^/]+:feedback$", "^/v2/models/[^/]+/feedback$"]
MODEL = "diabetes-risk"
SERVED_PATHS = [
    f"/v1/models/{MODEL}:predict",
    f"/v1/models/{MODEL}",
    f"/v2/models/{MODEL}/infer",
    f"/v2/models/{MODEL}/versions/1/infer",
    f"/v2/models/{MODEL}/ready",
    f"/v2/models/{MODEL}/versions/1",
    f"/v2/models/{MODEL}",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2",
    "/v2/",
]
EXPLAIN_PATHS = [f"/v1/models/{MODEL}:explain", f"/v2/models/{MODEL}/explain"]
FEEDBACK_PATHS = [f"/v1/models/{MODEL}:feedback", f"/v2/models/{MODEL}/feedback"]
# management, metrics, docs and near misses of the served regexes: no route on any track
UNROUTED_PATHS = [
    "/",
    "/metrics",
    "/metrics/",
    "/docs",
    "/openapi.json",
    "/v1/models",
    "/v2/models",
    "/v2/repository/index",
    f"/v2/repository/models/{MODEL}/load",
    f"/v2/repository/models/{MODEL}/unload",
    f"/v1/models/{MODEL}:unload",
    f"/v1/models/{MODEL}:predictx",
    f"/v2/models/{MODEL}/infer/extra",
    f"/v2/models/{MODEL}/generate",
    "/v2/health",
    "/v2/health/startup",
    "/v3/models/x/infer",
]
PIN_HEADERS: list[dict[str, str]] = [{}, {"x-model-version": "stable"}, {"x-model-version": "canary"}]


def _uri_matches(uris: list[str], pin: str | None = None) -> list[dict[str, Any]]:
    """The `match` list of a route over these URIs; a pin route carries the header on every entry."""
    if pin is None:
        return [{"uri": {"regex": u}} for u in uris]
    return [{"uri": {"regex": u}, "headers": {"x-model-version": {"exact": pin}}} for u in uris]


def _feedback_on(values: dict[str, Any]) -> bool:
    drift = values.get("driftDetector", {})
    return bool(drift.get("enabled", True) and drift.get("feedback", {}).get("enabled", True))


def test_virtual_service_routes(scenario: tuple[Path, list[dict[str, Any]]]) -> None:
    path, docs = scenario
    values = _values(path)
    (vs,) = by_kind(docs, "VirtualService")
    routes = {r["name"]: r for r in vs["spec"]["http"]}
    assert len(routes) == len(vs["spec"]["http"]), "route names are not unique"
    primary = routes["primary"]
    weights = [d["weight"] for d in primary["route"]]
    assert sum(weights) == 100
    created = {service_fqdn(s) for i in by_kind(docs, "InferenceService") for s in kserve_services(i)}
    created |= {service_fqdn(s["metadata"]["name"]) for s in by_kind(docs, "Service")}  # feedback -> detector
    destinations = [d["destination"]["host"] for r in vs["spec"]["http"] for d in r["route"]]
    destinations += [r["mirror"]["host"] for r in vs["spec"]["http"] if "mirror" in r]
    missing = [h for h in destinations if h not in created]
    assert not missing, f"routes to Services KServe does not create: {missing} (created: {sorted(created)})"
    entry = "predictor" if values.get("transformer", {}).get("enabled") is False else "transformer"
    canary_on = values.get("canary", {}).get("enabled", True)
    explainer_on = values.get("explainer", {}).get("enabled", True)
    # every route matches only its own paths: no catch-all (no route without `match`, no prefix /)
    for route in vs["spec"]["http"]:
        assert route.get("match"), f"route {route['name']} matches every path"
        assert all(set(m["uri"]) == {"regex"} for m in route["match"]), route["name"]
    assert primary["match"] == _uri_matches(SERVED_URIS)
    assert routes["stable-pin"]["match"] == _uri_matches(SERVED_URIS, "stable")
    assert routes["stable-pin"]["route"] == [
        {"destination": {"host": service_fqdn(f"model-serving-stable-{entry}"), "port": {"number": 80}}}
    ]
    if explainer_on:
        assert routes["explain"]["match"] == _uri_matches(EXPLAIN_URIS)
        if canary_on:
            assert routes["explain-canary-pin"]["match"] == _uri_matches(EXPLAIN_URIS, "canary")
    else:
        assert not {"explain", "explain-canary-pin"} & set(routes)
    if _feedback_on(values):
        feedback = vs["spec"]["http"][0]
        assert feedback["name"] == "feedback"
        assert feedback["match"] == _uri_matches(FEEDBACK_URIS)
        assert feedback["route"] == [
            {"destination": {"host": service_fqdn("model-serving-drift-detector"), "port": {"number": 80}}}
        ]
    else:
        assert "feedback" not in routes
    if canary_on:
        expected = values.get("traffic", {}).get("weights", {"stable": 90, "canary": 10})
        assert [d["destination"]["host"] for d in primary["route"]] == [
            service_fqdn(f"model-serving-stable-{entry}"),
            service_fqdn(f"model-serving-canary-{entry}"),
        ]
        assert weights == [expected["stable"], expected["canary"]]
        pin = routes["canary-pin"]
        assert pin["match"] == _uri_matches(SERVED_URIS, "canary")
        assert pin["route"] == [
            {"destination": {"host": service_fqdn(f"model-serving-canary-{entry}"), "port": {"number": 80}}}
        ]
    else:
        assert "canary-pin" not in routes
        assert weights == [100]
    mirror = values.get("traffic", {}).get("mirrorPercent", 0)
    if mirror:
        assert primary["mirror"]["host"] == service_fqdn(f"model-serving-canary-{entry}")
        assert primary["mirrorPercentage"] == {"value": mirror}
    else:
        assert "mirror" not in primary
    assert primary["timeout"] == "10s" and primary["retries"]["attempts"] == 2
    hosts = {d["spec"]["host"] for d in by_kind(docs, "DestinationRule")}
    assert hosts == {d["destination"]["host"] for d in primary["route"]} | (
        {service_fqdn(f"model-serving-canary-{entry}")} if canary_on else set()
    )


def _route_for(vs: dict[str, Any], path: str, headers: dict[str, str]) -> dict[str, Any] | None:
    """The first http route whose match list matches, as Envoy picks it (uri regex: RE2 full
    match; headers: exact; no match list: everything); None: no route (Istio answers 404)."""
    import re

    def matches(m: dict[str, Any]) -> bool:
        uri = m.get("uri", {})
        if "regex" in uri and not re.fullmatch(uri["regex"], path):
            return False
        return all(headers.get(h) == cond["exact"] for h, cond in m.get("headers", {}).items())

    for route in vs["spec"]["http"]:
        if "match" not in route or any(matches(m) for m in route["match"]):
            return route
    return None


def test_route_matching_sees_uri_and_header() -> None:
    """The evaluator the routing tests rely on: a regex that does not match the whole path, or a
    header with another value, is no match; no route at all is None."""
    vs = {
        "spec": {
            "http": [
                {"name": "pin", "match": _uri_matches(["^/a$"], "canary"), "route": []},
                {"name": "plain", "match": _uri_matches(["^/a$"]), "route": []},
            ]
        }
    }
    assert _route_for(vs, "/a", {"x-model-version": "canary"}) == vs["spec"]["http"][0]
    assert _route_for(vs, "/a", {"x-model-version": "stable"}) == vs["spec"]["http"][1]
    assert _route_for(vs, "/a/b", {"x-model-version": "canary"}) is None
    assert _route_for(vs, "/ba", {}) is None


def test_explanations_routed_per_track_pin_first(scenario: tuple[Path, list[dict[str, Any]]]) -> None:
    """`:explain` (V1) and `/explain` (V2) go to the pinned track's explainer, canary pin first,
    unpinned ones to stable; inference requests never reach an explainer. With the explainer off,
    explain paths match no route at all (404 from Istio, never a model server)."""
    path, docs = scenario
    values = _values(path)
    (vs,) = by_kind(docs, "VirtualService")
    explainer = values.get("explainer", {}).get("enabled", True)
    canary = values.get("canary", {}).get("enabled", True)
    entry = "predictor" if values.get("transformer", {}).get("enabled") is False else "transformer"
    names = [r["name"] for r in vs["spec"]["http"]]
    expected_names = (
        (["feedback"] if _feedback_on(values) else [])
        + (["explain-canary-pin"] if explainer and canary else [])
        + (["explain"] if explainer else [])
        + (["canary-pin"] if canary else [])
        + ["stable-pin", "primary"]
    )
    assert names == expected_names

    def host(path: str, **headers: str) -> str:
        route = _route_for(vs, path, headers)
        assert route is not None, f"no route for {path} {headers}"
        return str(route["route"][0]["destination"]["host"]).split(".")[0]

    pins = [("stable", "stable")] + ([("canary", "canary")] if canary else [])
    for explain in EXPLAIN_PATHS:
        if explainer:
            assert host(explain) == "model-serving-stable-explainer"
            for pin, track in pins:
                assert host(explain, **{"x-model-version": pin}) == f"model-serving-{track}-explainer"
        else:
            for headers in PIN_HEADERS:
                assert _route_for(vs, explain, headers) is None, (explain, headers)
    for infer in ("/v1/models/diabetes-risk:predict", "/v2/models/diabetes-risk/infer"):
        route = _route_for(vs, infer, {})
        assert route is not None and route["name"] == "primary"
        for pin, track in pins:
            assert host(infer, **{"x-model-version": pin}) == f"model-serving-{track}-{entry}"


def test_only_served_paths_are_routed(scenario: tuple[Path, list[dict[str, Any]]]) -> None:
    """Inference, metadata, readiness and health reach the entry component of the track the pin
    names (unpinned: `primary`); management, /metrics, /docs and anything else match no route on
    any track (Istio's 404); feedback goes to the drift detector whatever the pin."""
    path, docs = scenario
    values = _values(path)
    (vs,) = by_kind(docs, "VirtualService")
    canary = values.get("canary", {}).get("enabled", True)
    for served in SERVED_PATHS:
        expected = {"": "primary", "stable": "stable-pin", "canary": "canary-pin" if canary else "primary"}
        for headers in PIN_HEADERS:
            route = _route_for(vs, served, headers)
            assert route is not None, (served, headers)
            assert route["name"] == expected[headers.get("x-model-version", "")], (served, headers)
    for unrouted in UNROUTED_PATHS:
        for headers in PIN_HEADERS:
            route = _route_for(vs, unrouted, headers)
            assert route is None, (unrouted, headers, route and route["name"])
    for feedback in FEEDBACK_PATHS:
        for headers in PIN_HEADERS:
            route = _route_for(vs, feedback, headers)
            if _feedback_on(values):
                assert route is not None and route["name"] == "feedback", (feedback, headers)
            else:
                assert route is None, (feedback, headers)


def test_without_feedback_there_is_no_feedback_route(helm: Helm) -> None:
    (vs,) = by_kind(helm.template(set_values={"driftDetector.feedback.enabled": "false"}), "VirtualService")
    assert [r["name"] for r in vs["spec"]["http"]] == [
        "explain-canary-pin", "explain", "canary-pin", "stable-pin", "primary",
    ]  # fmt: skip
    for feedback in FEEDBACK_PATHS:
        for headers in PIN_HEADERS:
            assert _route_for(vs, feedback, headers) is None, (feedback, headers)


# Which component payload-logs each InferenceService's client traffic, per ci/ scenario: KServe's
# agent (REST hop into the predictor: CloudEvents binary mode) or the predictor's own logger
# (transformer over grpc-v2, which the agent cannot see: logger.format, `batch` by default).
LOGGING = {
    "default": ("agent", "binary"),
    "no-canary": ("agent", "binary"),
    "canary-10-90": ("agent", "binary"),
    "canary-100": ("agent", "binary"),
    "shadow": ("agent", "binary"),
    "auth": ("agent", "binary"),
    "explainer-off": ("agent", "binary"),
    "no-transformer": ("agent", "binary"),
    "grpc": ("predictor", "batch"),
    "batch": ("agent", "binary"),
    "retraining": ("agent", "binary"),
}


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _hop_into_predictor(isvc: dict[str, Any], vs: dict[str, Any]) -> tuple[str, str]:
    """(protocol, port) of the client traffic's hop into the predictor's Service."""
    if "transformer" in isvc["spec"]:
        args = isvc["spec"]["transformer"]["containers"][0]["args"]
        port = args[args.index("--predictor_host") + 1].rsplit(":", 1)[1]
        return args[args.index("--predictor_protocol") + 1], port
    predictor = service_fqdn(f"{isvc['metadata']['name']}-predictor")
    ports = {
        d["destination"]["port"]["number"]
        for r in vs["spec"]["http"]
        for d in r["route"]
        if d["destination"]["host"] == predictor
    }
    assert ports == {80}, ports
    return "v2", "80"


def _logging_path(isvc: dict[str, Any]) -> dict[str, Any]:
    """Who logs the predictor's traffic, where to, in which format, with which metadata headers."""
    predictor = isvc["spec"]["predictor"]
    container = predictor["containers"][0]
    args, env = container["args"], _env(container)
    if "logger" in predictor:
        assert "--logger_url" not in args, "agent and predictor would both log"
        assert "PREDICTOR_LOGGER_FORMAT" not in env and "PREDICTOR_LOGGER_METADATA_HEADERS" not in env
        return {
            "by": "agent",
            "url": predictor["logger"]["url"],
            "mode": predictor["logger"]["mode"],
            "format": "binary",  # KServe's agent: one POST per event, CloudEvents binary mode
            "metadataHeaders": predictor["logger"].get("metadataHeaders"),
        }
    if "--logger_url" in args:
        assert args[args.index("--inference_service") + 1] == isvc["metadata"]["name"]
        assert args[args.index("--namespace") + 1] == NAMESPACE
        return {
            "by": "predictor",
            "url": args[args.index("--logger_url") + 1],
            "mode": args[args.index("--logger_mode") + 1],
            "format": env.get("PREDICTOR_LOGGER_FORMAT"),
            "metadataHeaders": json.loads(env["PREDICTOR_LOGGER_METADATA_HEADERS"]),
        }
    return {"by": None}


def test_every_scenario_has_a_working_logging_path(scenario: tuple[Path, list[dict[str, Any]]]) -> None:
    """Each InferenceService's client traffic reaches the drift detector exactly once: through
    KServe's agent when the hop into the predictor is REST (port 80), through the predictor's own
    logger when it is gRPC (8081, invisible to the agent); explainer calls (gRPC, marked) never."""
    path, docs = scenario
    by, fmt = LOGGING[path.name.removesuffix("-values.yaml")]
    (svc,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("drift-detector")]
    (deploy,) = by_kind(docs, "Deployment")
    (vs,) = by_kind(docs, "VirtualService")
    assert svc["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    container_ports = {
        p["name"]: p["containerPort"] for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 80 and container_ports[port["targetPort"]] == 8080
    isvcs = by_kind(docs, "InferenceService")
    assert isvcs
    (policy,) = [
        n for n in by_kind(docs, "NetworkPolicy") if n["metadata"]["name"] == svc["metadata"]["name"]
    ]
    for isvc in isvcs:
        # KServe copies the InferenceService's labels onto its pods: the detector's policy admits them
        assert any(
            "podSelector" in peer
            and peer["podSelector"]["matchLabels"].items() <= isvc["metadata"]["labels"].items()
            and {"port": 8080, "protocol": "TCP"} in rule["ports"]
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
        ), policy["spec"]["ingress"]
        logging = _logging_path(isvc)
        protocol, hop_port = _hop_into_predictor(isvc, vs)
        assert (logging["by"], logging["format"]) == (by, fmt), isvc["metadata"]["name"]
        # the logger that logs is the one that sees the hop
        assert (protocol, hop_port) == (("grpc-v2", "8081") if by == "predictor" else ("v2", "80"))
        assert logging["mode"] == "all"  # the detector admits rows only with their 200 response
        assert logging["metadataHeaders"] == ["X-Model-Serving-Caller"]  # same ce-metadata either way
        parsed = urlparse(logging["url"])
        assert parsed.scheme == "http" and parsed.hostname == service_fqdn(svc["metadata"]["name"])
        assert (parsed.port or 80) == port["port"] and parsed.path == "/"
        if "explainer" in isvc["spec"]:
            args = isvc["spec"]["explainer"]["containers"][0]["args"]
            assert args[args.index("--predictor_protocol") + 1] == "grpc-v2"
            assert args[args.index("--predictor_host") + 1].endswith(":8081")  # never the agent's port


@pytest.mark.parametrize(
    ("set_values", "expected"),
    [
        pytest.param(
            {"transformer.predictorProtocol": "grpc-v2", "logger.format": "binary"},
            ("predictor", "binary", ["X-Model-Serving-Caller"]),
            id="grpc-binary",
        ),
        pytest.param(
            {"logger.metadataHeaders": "{x-model-serving-caller,x-b3-traceid}"},
            ("agent", "binary", ["X-Model-Serving-Caller", "X-B3-Traceid"]),
            id="agent-headers-canonical",
        ),
        pytest.param({"logger.enabled": "false"}, (None, None, None), id="logger-off"),
    ],
)
def test_logging_values(helm: Helm, set_values: dict[str, str], expected: tuple[Any, ...]) -> None:
    """logger.format reaches the predictor's own logger; metadata headers are written in Go's
    canonical form (the agent matches them case-sensitively against Go's canonical keys)."""
    for isvc in by_kind(helm.template(set_values=set_values), "InferenceService"):
        logging = _logging_path(isvc)
        assert (logging["by"], logging.get("format"), logging.get("metadataHeaders")) == expected
        env = _env(isvc["spec"]["predictor"]["containers"][0])
        assert ("PREDICTOR_LOGGER_FORMAT" in env) == (expected[0] == "predictor")


def test_every_container_bounded_probed_restricted(scenario: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = scenario
    seen = 0
    for where, spec, is_test in pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        # only the rollout CLI and the retraining trigger (rollout.retrain) call the Kubernetes API
        assert spec.get("automountServiceAccountToken") is where.startswith(
            ("CronJob model-serving-rollout", "StatefulSet model-serving-retrain-trigger")
        ), where
        for c in spec.get("initContainers", []) + spec["containers"]:
            seen += 1
            label = f"{where} container {c['name']}"
            assert {"cpu", "memory"} <= c["resources"]["requests"].keys(), label
            assert {"cpu", "memory"} <= c["resources"]["limits"].keys(), label
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, label
            assert sc["readOnlyRootFilesystem"] is True, label
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, label
            assert sc["capabilities"]["drop"] == ["ALL"], label
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", label
        for c in spec["containers"]:
            if is_test or where.startswith(("CronJob", "Job")):  # run to completion: no probes
                continue
            assert {"readinessProbe", "livenessProbe"} <= c.keys(), f"{where} {c['name']} lacks probes"
            if where.startswith("InferenceService"):
                assert c["readinessProbe"]["httpGet"]["path"] == "/v2/models/diabetes-risk/ready"
                assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert seen >= 3


def test_rollout_role_grants_exactly_what_the_cli_does(default_docs: list[dict[str, Any]]) -> None:
    """docs/contracts.md "Rollout CLI": get/patch the VirtualService, get both InferenceServices,
    create Events; each limited to the release's objects where Kubernetes allows it."""
    (vs,) = by_kind(default_docs, "VirtualService")
    (role,) = by_kind(default_docs, "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["networking.istio.io"],
            "resources": ["virtualservices"],
            "resourceNames": [vs["metadata"]["name"]],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "resourceNames": ["model-serving-stable", "model-serving-canary"],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    assert not by_kind(default_docs, "ClusterRole") and not by_kind(default_docs, "ClusterRoleBinding")
    (binding,) = by_kind(default_docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa_names = {s["metadata"]["name"] for s in by_kind(default_docs, "ServiceAccount")}
    assert [s["name"] for s in binding["subjects"]] == ["model-serving-rollout"]
    assert "model-serving-rollout" in sa_names


def test_monitoring_scrapes_server_ports_and_wraps_rules(default_docs: list[dict[str, Any]]) -> None:
    (pm,) = [p for p in by_kind(default_docs, "PodMonitor") if p["metadata"]["name"] == "model-serving"]
    # Istio's merged metrics: the sidecar's declared port, moved to the pilot-agent's 15020, which
    # fetches the server's own :8080/metrics (prometheus.io/port), never the agent's 9081
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == (
        "http-envoy-prom",
        "/stats/prometheus",
        "http",
    )
    assert endpoint["relabelings"][0]["replacement"] == "$1:15020"
    for isvc in by_kind(default_docs, "InferenceService"):
        for component in ("predictor", "transformer", "explainer"):
            ports = isvc["spec"][component]["containers"][0]["ports"]
            assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in ports
            assert isvc["spec"][component]["annotations"]["prometheus.io/port"] == "8080"
    (rule,) = by_kind(default_docs, "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert {
        "ModelServingHighErrorRate",
        "ModelServingHighLatencyP99",
        "ModelServingCanaryWorseThanStable",
    } <= alerts
    (dashboard,) = [
        c for c in by_kind(default_docs, "ConfigMap") if c["metadata"]["name"].endswith("dashboard")
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_prometheus_rule_wraps_the_drift_detectors_rules(default_docs: list[dict[str, Any]]) -> None:
    import yaml

    sources = sorted((REPO / "drift-detector" / "alerts").glob("*.yaml"))
    if not sources:
        pytest.skip("drift-detector/alerts/ has no rules files yet")
    (rule,) = by_kind(default_docs, "PrometheusRule")
    groups = rule["spec"]["groups"]
    for source in sources:
        for group in yaml.safe_load(source.read_text())["groups"]:
            assert group in groups, f"{source.name}: group {group['name']} missing (run `make manifests`)"
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert {"ModelDriftDetected", "DriftDetectorDown"} <= alerts, alerts


def test_auth_scenario_requires_jwt_on_every_release_pod(helm: Helm) -> None:
    docs = helm.template(CHART / "ci" / "auth-values.yaml")
    (ra,) = by_kind(docs, "RequestAuthentication")
    (ap,) = [a for a in by_kind(docs, "AuthorizationPolicy") if a["spec"]["action"] == "ALLOW"]
    # the release's selector labels, without `component`: entry, explainer, predictor, detector
    assert ra["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "model-serving",
        "app.kubernetes.io/instance": "model-serving",
    }
    assert ap["spec"]["selector"] == ra["spec"]["selector"]
    assert ap["spec"]["rules"] == [
        {"from": [{"source": {"requestPrincipals": ["*"]}}]},
        {"from": [{"source": {"namespaces": [NAMESPACE]}}]},
    ]
    (gw,) = by_kind(docs, "Gateway")
    (vs,) = by_kind(docs, "VirtualService")
    assert f"{NAMESPACE}/{gw['metadata']['name']}" in vs["spec"]["gateways"]
    assert not by_kind(helm.template(), "RequestAuthentication")


BAD_VALUES = [
    pytest.param(
        {"traffic.weights.canary": "120"},
        "at '/traffic/weights/canary': maximum: got 120, want 100",
        id="weight-120",
    ),
    pytest.param(
        {"traffic.weights.canary": "20"},
        "traffic.weights.stable (90) + traffic.weights.canary (20) = 110; the weights must sum to 100",
        id="sum-110",
    ),
    pytest.param(
        {"stable.minReplicas": "-1"},
        "at '/stable/minReplicas': minimum: got -1, want 0",
        id="negative-min-replicas",
    ),
    pytest.param(
        {"canary.maxReplicas": "-3"},
        "at '/canary/maxReplicas': minimum: got -3, want 1",
        id="negative-max-replicas",
    ),
    pytest.param(
        {"traffic.weigths.canary": "10"},
        "additional properties 'weigths' not allowed",
        id="unknown-nested-key",
    ),
    pytest.param({"colour": "blue"}, "additional properties 'colour' not allowed", id="unknown-key"),
    pytest.param(
        {"canary.enabled": "false", "traffic.mirrorPercent": "10"},
        "traffic.mirrorPercent > 0 shadows traffic to the canary",
        id="mirror-without-canary",
    ),
    pytest.param(
        {"driftDetector.enabled": "false"},
        "logger.enabled sends payloads to the drift detector",
        id="logger-without-detector",
    ),
    pytest.param(
        {"transformer.predictorProtocol": "v1"}, "at '/transformer/predictorProtocol'", id="bad-protocol"
    ),
    pytest.param(
        {"logger.mode": "request"},
        "logger.mode is request; the drift detector admits a request's rows only once its 200 response",
        id="logger-mode-request",
    ),
    pytest.param(
        {"logger.format": "json"},
        "at '/logger/format': value must be one of 'batch', 'binary'",
        id="bad-logger-format",
    ),
    pytest.param(
        {"logger.metadataHeaders": "{traceparent}"},
        "logger.metadataHeaders is [traceparent]; it must include X-Model-Serving-Caller",
        id="metadata-headers-without-caller",
    ),
    pytest.param(
        {"logger.metadataHeaders": "{x model}"},
        "at '/logger/metadataHeaders/0': 'x model' does not match pattern",
        id="metadata-header-not-a-token",
    ),
]


@pytest.mark.parametrize(("set_values", "message"), BAD_VALUES)
def test_bad_values_rejected_with_clear_message(helm: Helm, set_values: dict[str, str], message: str) -> None:
    with pytest.raises(HelmError) as err:
        helm.template(set_values=set_values)
    assert message in err.value.stderr


TEMPLATE_CHECKS = [
    pytest.param(
        {"traffic.weights.canary": "120", "traffic.weights.stable": "-20"},
        "traffic.weights.canary is 120; a weight must be between 0 and 100",
        id="weight-120",
    ),
    pytest.param({"traffic.weights.canary": "20"}, "the weights must sum to 100", id="sum-110"),
    pytest.param(
        {"stable.minReplicas": "-1"},
        "stable.minReplicas is -1; replicas cannot be negative",
        id="negative-replicas",
    ),
]


@pytest.mark.parametrize(("set_values", "message"), TEMPLATE_CHECKS)
def test_templates_check_even_without_schema(helm: Helm, set_values: dict[str, str], message: str) -> None:
    """The template's own checks hold with --skip-schema-validation too."""
    with pytest.raises(HelmError) as err:
        helm.template(set_values=set_values, extra=("--skip-schema-validation",))
    assert message in err.value.stderr


def test_values_are_all_documented() -> None:
    """Every leaf of values.yaml has a ``## @param`` line."""
    import yaml

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {
        line.split()[2]
        for line in (CHART / "values.yaml").read_text().splitlines()
        if line.strip().startswith("## @param")
    }

    def leaves(node: Any, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node and not any(prefix.startswith(p) for p in documented):
            return [k for key, sub in node.items() for k in leaves(sub, f"{prefix}{key}.")]
        return [prefix.rstrip(".")]

    undocumented = [p for p in leaves(values) if p not in documented]
    assert not undocumented, undocumented


def test_notes_print_the_exact_commands(helm: Helm) -> None:
    from chart_support import RELEASE

    out = helm.run("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client").stdout
    notes = out[out.index("NOTES:") :]
    assert "behind VirtualService model-serving." in notes
    assert "http://$INGRESS/v2/models/diabetes-risk/infer" in notes
    assert "`x-model-version: canary`" in notes
    assert "kubectl -n model-serving patch virtualservice model-serving --type=json" in notes
    # the JSON patch in the notes targets the `primary` route of the rendered VirtualService
    (vs,) = by_kind(helm.template(), "VirtualService")
    index = [r["name"] for r in vs["spec"]["http"]].index("primary")
    assert f'"path": "/spec/http/{index}/name", "value": "primary"' in notes
    assert "helm test model-serving -n model-serving" in notes


@pytest.mark.parametrize("values", CI_SCENARIOS, ids=SCENARIO_IDS)
def test_notes_patch_targets_primary_in_every_scenario(helm: Helm, values: Path) -> None:
    """The hand-written JSON patch's index follows the routes the scenario renders."""
    from chart_support import RELEASE

    out = helm.run(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", "-f", str(values)
    ).stdout
    (vs,) = by_kind(helm.template(values), "VirtualService")
    index = [r["name"] for r in vs["spec"]["http"]].index("primary")
    assert f'"path": "/spec/http/{index}/name", "value": "primary"' in out[out.index("NOTES:") :]
