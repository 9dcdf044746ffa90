"""Processes and ports from the rendered chart: each InferenceService component and the drift detector.

A container of the render becomes a local process with the container's own args and env,
rewritten for loopback: ``--http_port``/``--grpc_port`` get the component's local ports (KServe's
servers get a ``--grpc_port`` even when the chart leaves the default, since locally they share one
network namespace), ``--model_dir /mnt/models`` the local bundle of the storage URI, and every
``<svc>.<ns>.svc.cluster.local[:port]`` (predictor host, logger URL) the local address of that
Service's port. The image ``model-serving/<component>`` says which package to run. Each component's
``<PREFIX>_OTLP_ENDPOINT`` is the stack's trace store, whatever the chart's ``tracing`` values say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chart import Render
from .errors import ChartError
from .settings import StackSettings

__all__ = ["Program", "Topology", "build"]

Obj = dict[str, Any]
COMPONENTS = ("predictor", "transformer", "explainer")
_SERVICE_HOST = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9-]+)\.svc\.cluster\.local(?::(\d+))?")
PACKAGES = {"predictor": "predictor", "transformer": "transformer", "explainer": "explainer"}
#: the variable each package reads its OpenTelemetry collector from (``<PREFIX>_OTLP_ENDPOINT``)
OTLP_ENDPOINT = {
    "predictor": "PREDICTOR_OTLP_ENDPOINT",
    "transformer": "TRANSFORMER_OTLP_ENDPOINT",
    "explainer": "EXPLAINER_OTLP_ENDPOINT",
}


@dataclass
class Program:
    """One supervised process."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    #: the labels its pod would carry (what the chart's PodMonitors / Services select on), None: not a pod
    pod_labels: dict[str, str] | None = None
    pod_name: str = ""
    #: the port its containers name ``http`` (metrics are on it, at /metrics)
    http_port: int | None = None
    #: supervisord priority: lower starts first and stops last; equal ones stop in parallel
    priority: int = 200


@dataclass
class Topology:
    programs: list[Program]
    #: Service host -> {service port -> local port}
    services: dict[str, dict[int, int]]
    #: InferenceService name -> {"track", "ready": [urls]}
    inference_services: dict[str, Obj]
    model_name: str


def _drift_deployment(render: Render) -> Obj:
    found = [
        d
        for d in render.of_kind("Deployment")
        if any("drift-detector" in c.get("image", "") for c in d["spec"]["template"]["spec"]["containers"])
    ]
    if len(found) != 1:
        raise ChartError(
            f"the chart rendered {len(found)} drift detector Deployments; the local stack needs one"
        )
    return found[0]


def _bundle(settings: StackSettings, storage_uri: str, where: str) -> Path:
    name = storage_uri.rstrip("/").rsplit("/", 1)[-1]
    path = settings.bundles / name
    if not (path / "model.onnx").exists():
        raise ChartError(
            f"{where}: storage URI {storage_uri} maps to {path}, which has no model.onnx (make bundles)"
        )
    return path


def _rewrite(args: list[str], services: dict[str, dict[int, int]], where: str) -> list[str]:
    def local(m: re.Match[str]) -> str:
        host = m.group(0).split(":")[0]
        port = int(m.group(4) or 80)
        if host not in services or port not in services[host]:
            raise ChartError(f"{where}: {m.group(0)} is not a Service port of the local stack")
        return f"127.0.0.1:{services[host][port]}"

    return [_SERVICE_HOST.sub(local, a) for a in args]


def _set_flag(args: list[str], flag: str, value: str, *, add: bool) -> list[str]:
    if flag in args:
        i = args.index(flag)
        return [*args[: i + 1], value, *args[i + 2 :]]
    return [*args, flag, value] if add else args


def build(render: Render, settings: StackSettings) -> Topology:
    ns = settings.namespace
    isvcs = render.of_kind("InferenceService")
    if not isvcs:
        raise ChartError("the chart rendered no InferenceService")
    services: dict[str, dict[int, int]] = {}
    planned: list[tuple[Obj, str, str, Obj]] = []
    for isvc in isvcs:
        name = isvc["metadata"]["name"]
        track = (isvc["metadata"].get("labels") or {}).get("model-serving.io/track", name)
        for comp in COMPONENTS:
            spec = (isvc.get("spec") or {}).get(comp)
            if not spec:
                continue
            key = f"{track}-{comp}"
            services[f"{name}-{comp}.{ns}.svc.cluster.local"] = {
                80: settings.port(key),
                8081: settings.port(f"{key}-grpc"),
            }
            planned.append((isvc, track, comp, spec["containers"][0]))
    deployment = _drift_deployment(render)
    drift_name = deployment["metadata"]["name"]
    services[f"{drift_name}.{ns}.svc.cluster.local"] = {80: settings.port("drift-detector")}

    programs: list[Program] = []
    inference_services: dict[str, Obj] = {}
    model_name = ""
    stable_uri = ""
    for isvc, track, comp, container in planned:
        name = isvc["metadata"]["name"]
        where = f"InferenceService {name} {comp}"
        key = f"{track}-{comp}"
        package = container["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1]
        if package not in PACKAGES:
            raise ChartError(
                f"{where}: image {container['image']} is not one of this repository's components"
            )
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or [] if "value" in e}
        # spans go to the stack's trace store, whatever collector the chart's values name
        env[OTLP_ENDPOINT[package]] = f"http://127.0.0.1:{settings.port('trace-store')}"
        storage_uri = env.pop("STORAGE_URI", "")
        if track == "stable":
            stable_uri = storage_uri
        args = _rewrite([str(a) for a in container.get("args") or []], services, where)
        args = _set_flag(args, "--model_dir", str(_bundle(settings, storage_uri, where)), add=True)
        http, grpc = settings.port(key), settings.port(f"{key}-grpc")
        args = _set_flag(args, "--http_port", str(http), add=True)
        args = _set_flag(args, "--grpc_port", str(grpc), add=True)
        model_name = args[args.index("--model_name") + 1] if "--model_name" in args else model_name
        labels = {**(isvc["metadata"].get("labels") or {}), "component": comp}
        labels["serving.kserve.io/inferenceservice"] = name
        ready = f"http://127.0.0.1:{http}/v2/models/{model_name}/ready"
        programs.append(
            Program(
                name=key,
                command=[settings.python, "-m", PACKAGES[package], *args],
                env={**env, **settings.extra_env.get(key, {})},
                ready_url=ready,
                pod_labels=labels,
                pod_name=f"{name}-{comp}-local",
                http_port=http,
            )
        )
        inference_services.setdefault(name, {"track": track, "ready": []})["ready"].append(ready)

    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"])
    env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or [] if "value" in e}
    env.setdefault("DRIFT_SINK_URL", f"http://127.0.0.1:{settings.port('receiver')}/drift")
    _local_feedback_store(env, container, settings)
    args = _rewrite([str(a) for a in container.get("args") or []], services, "drift detector")
    port = settings.port("drift-detector")
    args = _set_flag(args, "--model_dir", str(_bundle(settings, stable_uri, "drift detector")), add=True)
    args = _set_flag(args, "--http_port", str(port), add=True)
    programs.append(
        Program(
            name="drift-detector",
            command=[settings.drift_python, "-m", "drift_detector", *args],
            env={**env, **settings.extra_env.get("drift-detector", {})},
            ready_url=f"http://127.0.0.1:{port}/ready",
            pod_labels=dict(deployment["spec"]["template"]["metadata"].get("labels") or {}),
            pod_name=f"{drift_name}-local",
            http_port=port,
        )
    )
    return Topology(programs, services, inference_services, model_name)


def _local_feedback_store(env: dict[str, str], container: Obj, settings: StackSettings) -> None:
    """The chart's SQLite feedback store lives on a claim mounted in the pod: locally that claim is
    the folder ``<state_dir>/volumes/<volume name>`` (kept across ``make down`` / ``make up``)."""
    url = env.get("DRIFT_FEEDBACK_DB_URL", "")
    if not url.startswith("sqlite:///"):
        return
    path = url.removeprefix("sqlite:///")
    for mount in container.get("volumeMounts") or []:
        root = str(mount["mountPath"]).rstrip("/") + "/"
        if path.startswith(root):
            local = settings.state_dir / "volumes" / str(mount["name"]) / path.removeprefix(root)
            env["DRIFT_FEEDBACK_DB_URL"] = f"sqlite:///{local}"
            return
