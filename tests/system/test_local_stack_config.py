"""What ``make up`` derives from the chart, without starting anything: Envoy routes, processes, scrapes.

The translator must render the chart's VirtualService faithfully and refuse any field it does not
translate, naming it; the processes must get the chart's own args with loopback addresses.
"""

from __future__ import annotations

import copy
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from local_stack.chart import render
from local_stack.envoy import cluster_name, translate
from local_stack.errors import TranslateError
from local_stack.monitoring import prometheus_config
from local_stack.settings import StackSettings
from local_stack.topology import build
from stack_support import REPO

NS = "local"


def host(isvc: str, component: str) -> str:
    return f"model-serving-{isvc}-{component}.{NS}.svc.cluster.local"


@pytest.fixture(scope="module")
def settings(gbm_bundle: Path, mlp_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> StackSettings:
    bundles = tmp_path_factory.mktemp("bundles")
    (bundles / "gbm").symlink_to(gbm_bundle)
    (bundles / "mlp").symlink_to(mlp_bundle)
    return StackSettings(state_dir=tmp_path_factory.mktemp("state"), bundles=bundles, namespace=NS)


@pytest.fixture(scope="module")
def vs(settings: StackSettings) -> dict[str, Any]:
    out: dict[str, Any] = render(settings).one("VirtualService")
    return out


DRIFT = f"model-serving-drift-detector.{NS}.svc.cluster.local"


def clusters() -> set[str]:
    serving = {
        cluster_name(host(t, c), 80) for t in ("stable", "canary") for c in ("transformer", "explainer")
    }
    return serving | {cluster_name(DRIFT, 80)}  # feedback -> the drift detector's feedback store


def routes_of(rds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rds["resources"][0]["virtual_hosts"][0]["routes"]}


# the chart's served URIs (issue 15), one Envoy route per VirtualService `match` entry, in order
SERVED = [
    "^/v1/models/[^/:]+(:predict)?$",
    "^/v2/models/[^/]+(/versions/[^/]+)?(/infer|/ready)?$",
    "^/v2/health/(live|ready)$",
    "^/v2/?$",
]
EXPLAIN = ["^/v1/models/[^/]+:explain$", "^/v2/models/[^/]+/explain$"]
PIN = "x-model-version"


def expanded(name: str, n: int) -> list[str]:
    return [name] + [f"{name}-{k}" for k in range(1, n)]


def envoy_route_for(rds: dict[str, Any], path: str, headers: dict[str, str]) -> str | None:
    """The first Envoy route matching (prefix, path or safe_regex full match; headers exact)."""
    for route in rds["resources"][0]["virtual_hosts"][0]["routes"]:
        m = route["match"]
        if "prefix" in m and not path.startswith(m["prefix"]):
            continue
        if "path" in m and path != m["path"]:
            continue
        if "safe_regex" in m and re.fullmatch(m["safe_regex"]["regex"], path) is None:
            continue
        if all(headers.get(h["name"]) == h["string_match"]["exact"] for h in m.get("headers", [])):
            return str(route["name"])
    return None


def test_the_charts_routes_become_envoy_routes(vs: dict[str, Any]) -> None:
    vs = {**vs, "metadata": {**vs["metadata"], "resourceVersion": "7"}}
    rds = translate(vs, clusters())
    assert rds["version_info"] == "7"
    routes = routes_of(rds)
    assert list(routes) == [
        *expanded("feedback", 2),
        *expanded("explain-canary-pin", len(EXPLAIN)),
        *expanded("explain", len(EXPLAIN)),
        *expanded("canary-pin", len(SERVED)),
        *expanded("stable-pin", len(SERVED)),
        *expanded("primary", len(SERVED)),
    ]
    assert not [r for r in routes if "prefix" in routes[r]["match"]], "a route matches every path"
    assert routes["feedback"]["match"] == {"safe_regex": {"regex": "^/v1/models/[^/]+:feedback$"}}
    assert routes["feedback-1"]["match"] == {"safe_regex": {"regex": "^/v2/models/[^/]+/feedback$"}}
    assert {routes[r]["route"]["cluster"] for r in ("feedback", "feedback-1")} == {cluster_name(DRIFT, 80)}
    primary_action = {
        "weighted_clusters": {
            "clusters": [
                {"name": cluster_name(host("stable", "transformer"), 80), "weight": 90},
                {"name": cluster_name(host("canary", "transformer"), 80), "weight": 10},
            ]
        },
        "timeout": "10.000s",
        "retry_policy": {
            "retry_on": "connect-failure,refused-stream,unavailable,retriable-status-codes",
            "num_retries": 2,
            "per_try_timeout": "4.000s",
            "retriable_status_codes": [503],
        },
    }
    pin_action = {k: v for k, v in primary_action.items() if k != "weighted_clusters"}
    for name, regex in zip(expanded("primary", len(SERVED)), SERVED, strict=True):
        assert routes[name]["match"] == {"safe_regex": {"regex": regex}}, name  # no pin header
        assert routes[name]["route"] == primary_action, name  # no mirror either
    for track in ("canary", "stable"):
        for name, regex in zip(expanded(f"{track}-pin", len(SERVED)), SERVED, strict=True):
            assert routes[name]["match"] == {
                "safe_regex": {"regex": regex},
                "headers": [{"name": PIN, "string_match": {"exact": track}}],
            }, name
            assert routes[name]["route"] == {
                "cluster": cluster_name(host(track, "transformer"), 80),
                **pin_action,
            }, name
    for name, regex in zip(expanded("explain-canary-pin", len(EXPLAIN)), EXPLAIN, strict=True):
        assert routes[name]["match"] == {
            "safe_regex": {"regex": regex},
            "headers": [{"name": PIN, "string_match": {"exact": "canary"}}],
        }, name
        assert routes[name]["route"]["cluster"] == cluster_name(host("canary", "explainer"), 80)
    for name, regex in zip(expanded("explain", len(EXPLAIN)), EXPLAIN, strict=True):
        assert routes[name]["match"] == {"safe_regex": {"regex": regex}}, name
        assert routes[name]["route"]["cluster"] == cluster_name(host("stable", "explainer"), 80)


@pytest.mark.parametrize(
    ("path", "headers", "route"),
    [
        ("/v2/models/diabetes-risk/infer", {}, "primary-1"),
        ("/v1/models/diabetes-risk:predict", {}, "primary"),
        ("/v2/health/ready", {}, "primary-2"),
        ("/v2", {}, "primary-3"),
        ("/v2/models/diabetes-risk/infer", {PIN: "canary"}, "canary-pin-1"),
        ("/v2/models/diabetes-risk/ready", {PIN: "stable"}, "stable-pin-1"),
        ("/v2/models/diabetes-risk/infer", {PIN: "other"}, "primary-1"),
        ("/v1/models/diabetes-risk:explain", {PIN: "canary"}, "explain-canary-pin"),
        ("/v2/models/diabetes-risk/explain", {}, "explain-1"),
        ("/v2/models/diabetes-risk/feedback", {PIN: "canary"}, "feedback-1"),
        ("/metrics", {}, None),
        ("/metrics", {PIN: "canary"}, None),
        ("/docs", {PIN: "stable"}, None),
        ("/", {}, None),
        ("/v2/repository/index", {}, None),
        ("/v2/repository/models/diabetes-risk/unload", {PIN: "canary"}, None),
        ("/v2/models/diabetes-risk/infer/extra", {}, None),
    ],
)
def test_envoy_routes_only_served_paths(
    vs: dict[str, Any], path: str, headers: dict[str, str], route: str | None
) -> None:
    """Management, /metrics and /docs match no Envoy route (404 from Envoy, as from Istio)."""
    assert envoy_route_for(translate(vs, clusters()), path, headers) == route


def test_mirror_with_percentage_and_zero_weights(settings: StackSettings) -> None:
    sets = ["traffic.mirrorPercent=25", "traffic.weights.stable=100", "traffic.weights.canary=0"]
    mirrored = StackSettings(**{**settings.model_dump(), "helm_set": sets})
    primary = routes_of(translate(render(mirrored).one("VirtualService"), clusters()))["primary"]
    assert primary["route"]["cluster"] == cluster_name(host("stable", "transformer"), 80)  # weight 0 left out
    assert primary["route"]["request_mirror_policies"] == [
        {
            "cluster": cluster_name(host("canary", "transformer"), 80),
            "runtime_fraction": {"default_value": {"numerator": 250_000, "denominator": "MILLION"}},
        }
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda v: v["spec"]["http"][5].update(fault={"abort": {}}), "spec.http[5].fault is not supported"),
        (lambda v: v["spec"].update(tcp=[]), "spec.tcp is not supported"),
        (
            lambda v: v["spec"]["http"][3]["match"][0].update(queryParams={}),
            "spec.http[3].match[0].queryParams",
        ),
        (lambda v: v["spec"]["http"][5]["route"][0]["destination"].update(subset="v1"), "destination.subset"),
        (
            lambda v: v["spec"]["http"][5]["retries"].update(retryRemoteLocalities=True),
            "retryRemoteLocalities",
        ),
        (lambda v: v["spec"]["http"][5].update(timeout="soon"), "'soon' is not a duration"),
        (
            lambda v: v["spec"]["http"][5]["retries"].update(retryOn="sometimes"),
            "unknown condition 'sometimes'",
        ),
        (
            lambda v: v["spec"]["http"][5]["route"][0]["destination"].update(host="elsewhere.svc"),
            "host elsewhere.svc port 80 is not a service of the local stack",
        ),
        (
            lambda v: [d.update(weight=0) for d in v["spec"]["http"][5]["route"]],
            "every destination has weight 0",
        ),
    ],
)
def test_fields_the_translator_does_not_cover_are_refused_by_path(
    vs: dict[str, Any], edit: Any, message: str
) -> None:
    edited = copy.deepcopy(vs)
    edit(edited)
    with pytest.raises(TranslateError, match="VirtualService") as e:
        translate(edited, clusters())
    assert message in str(e.value)


def test_processes_get_the_charts_args_on_loopback(settings: StackSettings) -> None:
    rendered = render(settings)
    topo = build(rendered, settings)
    programs = {p.name: p for p in topo.programs}
    components = ("predictor", "transformer", "explainer")
    expected = {f"{t}-{c}" for t in ("stable", "canary") for c in components} | {"drift-detector"}
    assert set(programs) == expected
    predictor = programs["stable-predictor"]
    args = predictor.command
    assert args[1:3] == ["-m", "predictor"]
    assert args[args.index("--logger_url") + 1] == f"http://127.0.0.1:{settings.port('drift-detector')}/"
    assert args[args.index("--inference_service") + 1] == "model-serving-stable"
    assert args[args.index("--model_dir") + 1] == str(settings.bundles / "gbm")
    assert predictor.env["PREDICTOR_LOGGER_FORMAT"] == "batch"
    transformer = programs["canary-transformer"].command
    assert (
        transformer[transformer.index("--predictor_host") + 1]
        == f"127.0.0.1:{settings.port('canary-predictor-grpc')}"
    )
    explainer = programs["canary-explainer"].command
    assert explainer[explainer.index("--grpc_port") + 1] == str(settings.port("canary-explainer-grpc"))
    assert (
        programs["drift-detector"].env["DRIFT_SINK_URL"]
        == f"http://127.0.0.1:{settings.port('receiver')}/drift"
    )
    assert topo.inference_services["model-serving-canary"]["track"] == "canary"
    # the chart's SQLite feedback store on its claim becomes a folder of the stack's state
    feedback_db = settings.state_dir / "volumes" / "feedback" / "feedback.db"
    assert programs["drift-detector"].env["DRIFT_FEEDBACK_DB_URL"] == f"sqlite:///{feedback_db}"


def test_scrape_configs_apply_the_pod_monitors_relabelings(settings: StackSettings) -> None:
    rendered = render(settings)
    config = prometheus_config(rendered, build(rendered, settings), settings)
    pods = next(j for j in config["scrape_configs"] if j["job_name"] == f"podMonitor/{NS}/model-serving/0")
    relabel = {r["target_label"]: r.get("source_labels") for r in pods["relabel_configs"]}
    assert relabel["inferenceservice"] == ["__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice"]
    assert relabel["track"] == ["__meta_kubernetes_pod_label_model_serving_io_track"]
    assert relabel["namespace"] == ["__meta_kubernetes_namespace"]
    target = next(
        t
        for t in pods["static_configs"]
        if t["targets"] == [f"127.0.0.1:{settings.port('canary-predictor')}"]
    )
    assert target["labels"]["__meta_kubernetes_pod_label_model_serving_io_track"] == "canary"
    assert target["labels"]["__meta_kubernetes_pod_label_component"] == "predictor"
    assert config["rule_files"] == [str(REPO / "helm" / "model-serving" / "files" / "alerts" / "*.yaml")]
    assert any(
        j["job_name"] == "envoy" and j["metrics_path"] == "/stats/prometheus"
        for j in config["scrape_configs"]
    )


def test_up_refuses_ports_in_use_naming_them(settings: StackSettings) -> None:
    from local_stack.errors import StackError
    from local_stack.stack import Stack

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = StackSettings(**{**settings.model_dump(), "ports": {"prometheus": port}})
        with pytest.raises(StackError, match=f"ports in use: .*prometheus {port}"):
            Stack(busy, say=lambda _: None).up()
    assert not (busy.state_dir / "supervisord.pid").exists()


def test_monitors_select_by_labels_and_istio_merged_metrics_scrape_the_app(settings: StackSettings) -> None:
    from local_stack.chart import Render

    rendered = render(settings)
    objects = copy.deepcopy(rendered.objects)
    monitor = next(o for o in objects if o["kind"] == "PodMonitor")
    # the cluster chart's form: Istio's merged metrics on the sidecar (:15020), only the predictors
    monitor["spec"]["selector"]["matchExpressions"] = [
        {"key": "component", "operator": "In", "values": ["predictor"]}
    ]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    endpoint.update(port="http-envoy-prom", path="/stats/prometheus")
    endpoint["relabelings"].insert(
        0,
        {
            "sourceLabels": ["__address__"],
            "regex": "(.+):\\d+",
            "replacement": "$1:15020",
            "targetLabel": "__address__",
        },
    )
    edited = Render(objects)
    config = prometheus_config(edited, build(edited, settings), settings)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == f"podMonitor/{NS}/model-serving/0")
    assert job["metrics_path"] == "/metrics"
    assert all(r.get("target_label") != "__address__" for r in job["relabel_configs"])
    ports = {t["targets"][0] for t in job["static_configs"]}
    assert ports == {f"127.0.0.1:{settings.port(f'{t}-predictor')}" for t in ("stable", "canary")}
    drift = next(j for j in config["scrape_configs"] if "drift-detector" in j["job_name"])
    assert drift["static_configs"][0]["targets"] == [f"127.0.0.1:{settings.port('drift-detector')}"]


def test_a_revision_that_does_not_translate_leaves_envoys_routes_alone(
    vs: dict[str, Any], tmp_path: Path
) -> None:
    import yaml
    from local_stack.routes import RoutePaths, sync

    paths = RoutePaths(tmp_path)
    paths.envoy_dir.mkdir()
    good = {**vs, "metadata": {**vs["metadata"], "resourceVersion": "3"}}
    paths.virtual_service.write_text(yaml.safe_dump(good))
    assert sync(paths, clusters()) == "3"
    before = paths.rds.read_text()
    bad = copy.deepcopy(good)
    bad["metadata"]["resourceVersion"] = "4"
    bad["spec"]["http"][5]["corsPolicy"] = {"allowOrigins": []}
    paths.virtual_service.write_text(yaml.safe_dump(bad))
    with pytest.raises(TranslateError, match=r"spec.http\[5\].corsPolicy"):
        sync(paths, clusters())
    assert paths.rds.read_text() == before
    assert [p.name for p in paths.rds.parent.iterdir()] == [
        "rds.yaml"
    ]  # nothing else in Envoy's watched folder
