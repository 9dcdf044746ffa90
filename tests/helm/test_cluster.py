"""What a real KServe + Istio + kube-prometheus-stack cluster needs from the rendered chart
(issue 11): each test names the defect it guards against."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chart_support import (
    CHART,
    CI_SCENARIOS,
    NAMESPACE,
    REPO,
    Helm,
    HelmError,
    by_kind,
    pod_specs,
    service_fqdn,
)
from fake_api import FakeAPI

SCENARIO_IDS = [p.name.removesuffix("-values.yaml") for p in CI_SCENARIOS]
SELECTOR = {"app.kubernetes.io/name": "model-serving", "app.kubernetes.io/instance": "model-serving"}
# ports the Istio sidecar never intercepts: pilot-agent (merged metrics, probes) and Envoy's stats
SIDECAR_EXEMPT_PORTS = {15020, 15090}
# every serving pod (InferenceService components, drift detector): Istio metrics merging of the
# server's /metrics on 8080, and the sidecar's drain (hardening.drainSeconds + graceSeconds, 5 + 10)
POD_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": "8080",
    "prometheus.io/path": "/metrics",
    "proxy.istio.io/config": '{"terminationDrainDuration": "15s"}',
}


@pytest.fixture(scope="module", params=CI_SCENARIOS, ids=SCENARIO_IDS)
def rendered(request: pytest.FixtureRequest, helm: Helm) -> list[dict[str, Any]]:
    return helm.template(request.param)


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


# 1. traffic -------------------------------------------------------------------------------------


def test_every_gateway_the_virtual_service_names_exists(rendered: list[dict[str, Any]]) -> None:
    """Defect: the VirtualService named istio-system/istio-ingressgateway, which nobody creates."""
    (vs,) = by_kind(rendered, "VirtualService")
    own = {f"{g['metadata']['namespace']}/{g['metadata']['name']}" for g in by_kind(rendered, "Gateway")}
    gateways = vs["spec"]["gateways"]
    assert all(g == "mesh" or g in own for g in gateways), (gateways, own)
    assert [g for g in gateways if g != "mesh"], "no ingress gateway: no north-south traffic"


def test_values_gateway_is_namespaced_and_validated(helm: Helm) -> None:
    docs = helm.template(
        set_values={"traffic.gateway.create": "false", "traffic.gateways": "{istio-ingress/public}"}
    )
    assert not by_kind(docs, "Gateway")
    (vs,) = by_kind(docs, "VirtualService")
    assert vs["spec"]["gateways"] == ["istio-ingress/public", "mesh"]
    with pytest.raises(HelmError) as err:
        helm.template(set_values={"traffic.gateways": "{public}"})
    assert "at '/traffic/gateways/0'" in err.value.stderr


def test_in_cluster_callers_get_the_same_routes(default_docs: list[dict[str, Any]]) -> None:
    """Defect: no `mesh` gateway, so sidecars bypassed the weights."""
    (vs,) = by_kind(default_docs, "VirtualService")
    host = service_fqdn("model-serving")
    assert "mesh" in vs["spec"]["gateways"] and host in vs["spec"]["hosts"]
    svc = _one(default_docs, "Service", "model-serving")  # the host resolves
    assert "selector" not in svc["spec"] and svc["spec"]["ports"][0]["port"] == 80


def test_gateway_tls_redirects_plain_http(helm: Helm) -> None:
    (gw,) = by_kind(helm.template(set_values={"traffic.gateway.credentialName": "tls"}), "Gateway")
    https, http = gw["spec"]["servers"]
    assert https["tls"] == {"mode": "SIMPLE", "credentialName": "tls"} and https["port"]["number"] == 443
    assert http["tls"] == {"httpsRedirect": True} and http["port"]["number"] == 80


def test_explanations_have_their_own_timeouts(default_docs: list[dict[str, Any]]) -> None:
    """Defect: explanations shared the 4 s per-try timeout of inference."""
    (vs,) = by_kind(default_docs, "VirtualService")
    routes = {r["name"]: r for r in vs["spec"]["http"]}
    for name in ("explain", "explain-canary-pin"):
        assert routes[name]["timeout"] == "60s", name
        assert routes[name]["retries"] == {
            "attempts": 1,
            "perTryTimeout": "50s",
            "retryOn": "connect-failure,refused-stream",
        }
    assert routes["primary"]["timeout"] == "10s" and routes["primary"]["retries"]["perTryTimeout"] == "4s"


def test_no_serverless_only_timeout_in_standard_mode(rendered: list[dict[str, Any]], helm: Helm) -> None:
    """Defect: predictor.timeout rendered a field KServe ignores in Standard mode."""
    for isvc in by_kind(rendered, "InferenceService"):
        for component in ("predictor", "transformer", "explainer"):
            assert "timeout" not in isvc["spec"].get(component, {}), component
    with pytest.raises(HelmError) as err:
        helm.template(set_values={"predictor.timeout": "30"})
    assert "additional properties 'timeout' not allowed" in err.value.stderr


# 2. metrics under STRICT mTLS -------------------------------------------------------------------


def _scrape_port(endpoint: dict[str, Any], pod_ports: dict[str, int]) -> int:
    """The port Prometheus ends up scraping: the named port, unless a relabeling moves __address__."""
    port = pod_ports[endpoint["port"]]
    for r in endpoint.get("relabelings", []):
        if r.get("targetLabel") == "__address__":
            port = int(r["replacement"].rsplit(":", 1)[1])
    return port


def test_every_scrape_target_survives_the_mtls_mode(rendered: list[dict[str, Any]]) -> None:
    """Defect: PodMonitor/ServiceMonitor scraped plain HTTP on 8080 under STRICT mTLS: every target down."""
    (pa,) = by_kind(rendered, "PeerAuthentication")
    strict = pa["spec"]["mtls"]["mode"] == "STRICT"
    assert pa["spec"]["selector"]["matchLabels"] == SELECTOR
    assert not by_kind(rendered, "ServiceMonitor")
    istio_proxy_ports = {"http-envoy-prom": 15090}  # declared by Istio's injected istio-proxy
    monitors = by_kind(rendered, "PodMonitor")
    assert monitors
    for pm in monitors:
        for endpoint in pm["spec"]["podMetricsEndpoints"]:
            port = _scrape_port(endpoint, istio_proxy_ports)
            if strict and endpoint.get("scheme", "http") == "http":
                assert port in SIDECAR_EXEMPT_PORTS, (pm["metadata"]["name"], port)
            assert (port, endpoint["path"]) == (15020, "/stats/prometheus")
    # the pods the monitors select ask Istio to merge their server's own /metrics on 8080 (and
    # their sidecar to drain as long as the server serves after SIGTERM: see the drain test)
    for isvc in by_kind(rendered, "InferenceService"):
        for component in ("predictor", "transformer", "explainer"):
            if component in isvc["spec"]:
                assert isvc["spec"][component]["annotations"] == POD_ANNOTATIONS, component
    deployments = by_kind(rendered, "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == ["model-serving-drift-detector"]
    for deploy in deployments:
        assert deploy["spec"]["template"]["metadata"]["annotations"] == POD_ANNOTATIONS


def _drained_pods(docs: list[dict[str, Any]]) -> dict[str, tuple[dict[str, str], int]]:
    """(annotations, terminationGracePeriodSeconds) of every serving pod: InferenceService
    components and the drift detector."""
    pods = {}
    for isvc in by_kind(docs, "InferenceService"):
        for component in ("predictor", "transformer", "explainer"):
            if component in isvc["spec"]:
                spec = isvc["spec"][component]
                pods[f"{isvc['metadata']['name']}-{component}"] = (
                    spec["annotations"],
                    spec["terminationGracePeriodSeconds"],
                )
    for deploy in by_kind(docs, "Deployment"):
        template = deploy["spec"]["template"]
        pods[deploy["metadata"]["name"]] = (
            template["metadata"]["annotations"],
            template["spec"]["terminationGracePeriodSeconds"],
        )
    return pods


def test_sidecar_drains_as_long_as_the_server_serves(rendered: list[dict[str, Any]]) -> None:
    """Defect (issue 15): the sidecar's default 5 s drain cut requests still in flight after
    SIGTERM, and the pod's grace period killed the server before it finished. Istio drains
    drainSeconds + graceSeconds, the pod gets 5 s more than that."""
    pods = _drained_pods(rendered)
    assert "model-serving-stable-predictor" in pods and "model-serving-drift-detector" in pods
    for name, (pod_annotations, grace) in pods.items():
        assert pod_annotations["proxy.istio.io/config"] == '{"terminationDrainDuration": "15s"}', name
        assert grace == 20, name  # defaults: drainSeconds 5 + graceSeconds 10 + 5


def test_drain_follows_the_hardening_values(helm: Helm) -> None:
    docs = helm.template(set_values={"hardening.drainSeconds": "7", "hardening.graceSeconds": "30"})
    pods = _drained_pods(docs)
    assert set(pods) == {
        f"model-serving-{track}-{component}"
        for track in ("stable", "canary")
        for component in ("predictor", "transformer", "explainer")
    } | {"model-serving-drift-detector"}
    for name, (pod_ann, grace) in pods.items():
        assert json.loads(pod_ann["proxy.istio.io/config"]) == {"terminationDrainDuration": "37s"}, name
        assert grace == 42, name
    # the detector's own server stops after the same drain and grace the pod is sized for
    (detector,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("drift-detector")]
    env = {e["name"]: e.get("value") for e in detector["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["DRIFT_DRAIN_SECONDS"], env["DRIFT_GRACE_SECONDS"]) == ("7", "30")


def test_prometheus_may_reach_only_the_scrape_ports(rendered: list[dict[str, Any]]) -> None:
    """Defect: the NetworkPolicies opened 8080 to Prometheus but not Istio's 15020/15090."""
    monitoring_peer = {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}
            ]
        }
    }
    for policy in by_kind(rendered, "NetworkPolicy"):
        rules = [r for r in policy["spec"]["ingress"] if monitoring_peer in r["from"]]
        assert len(rules) == 1, policy["metadata"]["name"]
        assert {p["port"] for p in rules[0]["ports"]} == SIDECAR_EXEMPT_PORTS


def test_kube_prometheus_stack_discovers_everything(default_docs: list[dict[str, Any]]) -> None:
    """Defect: monitoring.labels {} matched no kube-prometheus-stack selector."""
    for kind in ("PodMonitor", "PrometheusRule"):
        for doc in by_kind(default_docs, kind):
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack", doc["metadata"]["name"]
    dashboard = _one(default_docs, "ConfigMap", "model-serving-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_metrics_are_not_public(rendered: list[dict[str, Any]]) -> None:
    """Defect: an ALLOW rule for GET /metrics without a source made metrics public through the gateway."""
    policies = by_kind(rendered, "AuthorizationPolicy")
    for ap in policies:
        for rule in ap["spec"].get("rules", []):
            paths = [p for op in rule.get("to", []) for p in op["operation"].get("paths", [])]
            if ap["spec"].get("action", "ALLOW") == "ALLOW":
                assert "/metrics" not in paths, ap["metadata"]["name"]
    deny = _one(rendered, "AuthorizationPolicy", "model-serving-metrics")
    assert deny["spec"]["action"] == "DENY" and deny["spec"]["selector"]["matchLabels"] == SELECTOR
    assert deny["spec"]["rules"] == [
        {
            "from": [{"source": {"notNamespaces": ["monitoring"]}}],
            "to": [{"operation": {"paths": ["/metrics", "/metrics/*"]}}],
        }
    ]


# 3. storage ----------------------------------------------------------------------------------------


def _service_accounts_named(docs: list[dict[str, Any]]) -> dict[str, str]:
    named = {}
    for where, spec, _ in pod_specs(docs):
        if "serviceAccountName" in spec:
            named[where] = spec["serviceAccountName"]
    return named


def test_every_service_account_a_pod_names_exists(rendered: list[dict[str, Any]]) -> None:
    existing = {s["metadata"]["name"] for s in by_kind(rendered, "ServiceAccount")}
    named = _service_accounts_named(rendered)
    assert all(sa in existing for sa in named.values()), (named, existing)
    storage_pods = [w for w in named if w.startswith(("InferenceService", "Deployment"))]
    assert storage_pods and {named[w] for w in storage_pods} == {"model-serving-models"}


def test_storage_identity_reaches_both_storage_initializers(helm: Helm) -> None:
    """Defect: no ServiceAccount value for the InferenceServices; the detector's initializer had
    no credentials."""
    docs = helm.template(
        set_values={
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn": "arn:aws:iam::1:role/models",
            "serviceAccount.secrets": "{s3-creds}",
            "stable.storageUri": "s3://models/gbm",
            "canary.storageUri": "s3://models/mlp",
            "driftDetector.storageEnv[0].name": "S3_ENDPOINT",
            "driftDetector.storageEnv[0].value": "minio.storage:9000",
        }
    )
    sa = _one(docs, "ServiceAccount", "model-serving-models")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/models"}
    assert sa["secrets"] == [{"name": "s3-creds"}] and sa["automountServiceAccountToken"] is False
    (deploy,) = by_kind(docs, "Deployment")
    spec = deploy["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert spec["serviceAccountName"] == "model-serving-models"
    assert init["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert init["env"] == [{"name": "S3_ENDPOINT", "value": "minio.storage:9000"}]
    own = helm.template(set_values={"explainer.serviceAccountName": "explainer-identity"})
    for isvc in by_kind(own, "InferenceService"):
        assert isvc["spec"]["explainer"]["serviceAccountName"] == "explainer-identity"
        assert isvc["spec"]["predictor"]["serviceAccountName"] == "model-serving-models"


def test_the_default_bundle_claim_exists_and_is_shareable(default_docs: list[dict[str, Any]]) -> None:
    """Defect: pvc://model-bundles was never created (and would need ReadOnlyMany/ReadWriteMany)."""
    claims = {c["metadata"]["name"]: c for c in by_kind(default_docs, "PersistentVolumeClaim")}
    for isvc in by_kind(default_docs, "InferenceService"):
        for c in isvc["spec"]["predictor"]["containers"]:
            uri = {e["name"]: e.get("value") for e in c["env"]}["STORAGE_URI"]
            claim = uri.removeprefix("pvc://").split("/")[0]
            assert claim in claims, uri
            assert set(claims[claim]["spec"]["accessModes"]) & {"ReadOnlyMany", "ReadWriteMany"}
            assert claims[claim]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# 4. rollout in the cluster ---------------------------------------------------------------------------

KUBE_CALLS = {  # kubernetes client method -> (API group, resource, verb)
    "get_namespaced_custom_object": None,  # group/plural from the Resource constants
    "patch_namespaced_custom_object": None,
    "create_namespaced_event": ("", "events", "create"),
}


def _cli_permissions() -> set[tuple[str, str, str]]:
    """(group, resource, verb) the rollout CLI's Kubernetes gateway uses, read from its source."""
    source = (REPO / "rollout" / "rollout" / "kube.py").read_text()
    calls = {
        n.func.attr
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    unknown = {
        c for c in calls if re.match(r"(get|list|patch|create|delete|replace|watch)_namespaced_", c)
    } - KUBE_CALLS.keys()
    assert not unknown, f"the rollout CLI makes calls this test does not map to RBAC yet: {unknown}"
    resources = re.findall(r'Resource\("([^"]+)", "[^"]+", "([^"]+)"\)', source)
    assert resources, "Resource constants not found in rollout/rollout/kube.py"
    perms = set()
    for call in calls & KUBE_CALLS.keys():
        fixed = KUBE_CALLS[call]
        if fixed is not None:
            perms.add(fixed)
            continue
        verb = call.split("_", 1)[0]
        for group, plural in resources:
            if verb == "get" or plural == "virtualservices":
                perms.add((group, plural, verb))
    return perms


def test_every_verb_the_cli_uses_is_granted(default_docs: list[dict[str, Any]]) -> None:
    """Defect: no get on inferenceservices, no create on events."""
    (role,) = by_kind(default_docs, "Role")
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    needed = _cli_permissions()
    assert ("serving.kserve.io", "inferenceservices", "get") in needed and ("", "events", "create") in needed
    assert needed <= granted, needed - granted


def test_rollout_runs_in_the_cluster(default_docs: list[dict[str, Any]]) -> None:
    """Defect: the ServiceAccount mounted no token and nothing ran `rollout run` in the cluster."""
    cron = _one(default_docs, "CronJob", "model-serving-rollout")
    assert cron["spec"]["suspend"] is True
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"  # would never finish otherwise
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is True
    (binding,) = by_kind(default_docs, "RoleBinding")
    assert [s["name"] for s in binding["subjects"]] == [spec["serviceAccountName"]]
    (c,) = spec["containers"]
    assert c["image"] == "model-serving/rollout:0.1.0" and c["args"][0] == "run"
    env = {e["name"]: e["value"] for e in c["env"]}
    (vs,) = by_kind(default_docs, "VirtualService")
    assert env == {
        "ROLLOUT_VIRTUAL_SERVICE": vs["metadata"]["name"],
        "ROLLOUT_NAMESPACE": NAMESPACE,
        "ROLLOUT_STABLE": "model-serving-stable",
        "ROLLOUT_CANARY": "model-serving-canary",
        "ROLLOUT_PROMETHEUS_URL": "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090",
    }
    primary = next(r for r in vs["spec"]["http"] if r["name"] == "primary")
    hosts = [d["destination"]["host"] for d in primary["route"]]
    # the CLI finds stable/canary destinations by host substring (its default: the InferenceService name)
    assert env["ROLLOUT_STABLE"] in hosts[0] and env["ROLLOUT_CANARY"] in hosts[1]


# 5. auth and network -------------------------------------------------------------------------------


def test_jwt_covers_every_externally_reachable_component(helm: Helm) -> None:
    """Defect: :explain reached the explainer without a JWT."""
    docs = helm.template(CHART / "ci" / "auth-values.yaml")
    (ra,) = by_kind(docs, "RequestAuthentication")
    allow = _one(docs, "AuthorizationPolicy", "model-serving-require-jwt")
    (vs,) = by_kind(docs, "VirtualService")
    reachable = {d["destination"]["host"].split(".")[0] for r in vs["spec"]["http"] for d in r["route"]}
    assert any(h.endswith("-explainer") for h in reachable)
    for isvc in by_kind(docs, "InferenceService"):
        # KServe copies the InferenceService's labels onto its pods (plus `component`)
        assert ra["spec"]["selector"]["matchLabels"].items() <= isvc["metadata"]["labels"].items()
        assert allow["spec"]["selector"] == ra["spec"]["selector"]


def test_network_policy_knows_both_gateway_installs(helm: Helm, default_docs: list[dict[str, Any]]) -> None:
    """Defect: the gateway was assumed to live in istio-system (Helm installs use istio-ingress)."""
    policy = _one(default_docs, "NetworkPolicy", "model-serving-inference")
    peer = policy["spec"]["ingress"][0]["from"][0]
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["istio-system", "istio-ingress"]
    docs = helm.template(
        set_values={
            "security.networkPolicy.ingressNamespaces": "{gw}",
            "security.networkPolicy.callerNamespaces": "{apps}",
        }
    )
    policy = _one(docs, "NetworkPolicy", "model-serving-inference")
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "gw",
        "apps",
    ]


# 6. helm test ---------------------------------------------------------------------------------------


def test_helm_test_goes_through_the_entry_host_and_finishes(rendered: list[dict[str, Any]]) -> None:
    """Defect: the test pod called the predictor directly and never finished with classic sidecars."""
    (pod,) = [
        p for p in by_kind(rendered, "Pod") if p["metadata"]["annotations"].get("helm.sh/hook") == "test"
    ]
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"  # STRICT mTLS needs it
    assert "holdApplicationUntilProxyStarts" in pod["metadata"]["annotations"]["proxy.istio.io/config"]
    (vs,) = by_kind(rendered, "VirtualService")
    script = pod["spec"]["containers"][0]["args"][0]
    compile(script, "helm-test", "exec")
    base = re.search(r'"TEST_BASE_URL", "http://([^"]+)"', script)
    assert base and base.group(1) in vs["spec"]["hosts"], "the test bypasses the VirtualService"
    assert "/quitquitquit" in script and script.index("finally:") < script.index("/quitquitquit")
    isvc = by_kind(rendered, "InferenceService")[0]
    if "transformer" in isvc["spec"]:
        assert ":predict" in script
    if "explainer" in isvc["spec"]:
        assert ":explain" in script


# 7. helm upgrade keeps the live weights -------------------------------------------------------------


def _weights(vs: dict[str, Any]) -> list[int]:
    primary = next(r for r in vs["spec"]["http"] if r["name"] == "primary")
    return [d["weight"] for d in primary["route"]]


@pytest.fixture
def live_cluster(helm: Helm, tmp_path: Path) -> Iterator[tuple[FakeAPI, Path]]:
    """A fake API server holding the release's VirtualService as the rollout CLI left it (40/60)."""
    (vs,) = by_kind(helm.template(), "VirtualService")
    vs["metadata"]["annotations"] = {
        "meta.helm.sh/release-name": "model-serving",
        "meta.helm.sh/release-namespace": NAMESPACE,
    }
    primary = next(r for r in vs["spec"]["http"] if r["name"] == "primary")
    primary["route"][0]["weight"], primary["route"][1]["weight"] = 40, 60
    api = FakeAPI().start()
    try:
        api.put_virtual_service(vs)
        yield api, api.write_kubeconfig(tmp_path / "kubeconfig")
    finally:
        api.stop()


def _upgrade_render(helm: Helm, kubeconfig: Path, set_values: dict[str, str] | None = None) -> dict[str, Any]:
    """What `helm upgrade` would apply: the chart rendered with lookup against the cluster."""
    extra = ("--dry-run=server", "--disable-openapi-validation", "--kubeconfig", str(kubeconfig))
    (vs,) = by_kind(helm.template(set_values=set_values, extra=extra), "VirtualService")
    return vs


def test_upgrade_keeps_the_live_weights(helm: Helm, live_cluster: tuple[FakeAPI, Path]) -> None:
    """Defect: `helm upgrade` reset the weights the rollout CLI had set."""
    api, kubeconfig = live_cluster
    vs = _upgrade_render(helm, kubeconfig)
    assert _weights(vs) == [40, 60]
    assert any(r.endswith("/virtualservices/model-serving") for r in api.requests)  # it did look


def test_upgrade_with_explicit_weights_overrides_the_live_ones(
    helm: Helm, live_cluster: tuple[FakeAPI, Path]
) -> None:
    _, kubeconfig = live_cluster
    vs = _upgrade_render(helm, kubeconfig, {"traffic.weights.stable": "100", "traffic.weights.canary": "0"})
    assert _weights(vs) == [100, 0]


def test_upgrade_dropping_earlier_weights_returns_to_the_live_ones(
    helm: Helm, live_cluster: tuple[FakeAPI, Path]
) -> None:
    """`--reuse-values --set traffic.weights=null`: weights set at install no longer override."""
    _, kubeconfig = live_cluster
    extra = ("--dry-run=server", "--disable-openapi-validation", "--kubeconfig", str(kubeconfig))
    docs = helm.template(
        CHART / "ci" / "canary-10-90-values.yaml", set_values={"traffic.weights": "null"}, extra=extra
    )
    (vs,) = by_kind(docs, "VirtualService")
    assert _weights(vs) == [40, 60]


def test_install_without_a_live_service_uses_the_defaults(helm: Helm, tmp_path: Path) -> None:
    api = FakeAPI().start()
    try:
        assert _weights(_upgrade_render(helm, api.write_kubeconfig(tmp_path / "kubeconfig"))) == [90, 10]
    finally:
        api.stop()


BAD = [
    pytest.param(
        {"traffic.gateway.create": "false"},
        "traffic.gateway.create is false and traffic.gateways is empty",
        id="no-gateway",
    ),
    pytest.param(
        {"storage.pvc.accessModes": "{ReadWriteOnce}"},
        "storage.pvc.accessModes is [ReadWriteOnce]; every replica of every component mounts",
        id="pvc-rwo",
    ),
    pytest.param(
        {"serviceAccount.create": "false"},
        "serviceAccount.create is false and serviceAccount.name is empty",
        id="no-service-account",
    ),
    pytest.param(
        {"rollout.rbac": "false"},
        "rollout.job.enabled runs the rollout CLI as the release's rollout ServiceAccount",
        id="job-without-rbac",
    ),
]


@pytest.mark.parametrize(("set_values", "message"), BAD)
def test_cluster_values_rejected_with_clear_message(
    helm: Helm, set_values: dict[str, str], message: str
) -> None:
    with pytest.raises(HelmError) as err:
        helm.template(set_values=set_values)
    assert message in err.value.stderr


def test_chart_readme_lists_cluster_assumptions() -> None:
    readme = (CHART / "README.md").read_text()
    for needle in (
        "KServe 0.21",
        "Standard",
        "Istio",
        "native sidecars",
        "kube-prometheus-stack",
        "ReadWriteMany",
    ):
        assert needle in readme, needle
    assert "## Install sequence" in readme
