"""Issue 16: the chart exposes log format, log level and tracing (values ``logging``, ``tracing``).

Each value is rendered as the exact variable the component reads (``<PREFIX>_LOG_FORMAT``,
``_LOG_LEVEL``, ``_OTLP_ENDPOINT``, ``_TRACE_SAMPLE_RATIO``), and every component of the render is
started with its rendered args and env (only ports and the model folder made local): it gets past
its variable check (unknown ``PREFIX_*`` names and bad values exit 2) and stops at the missing
bundle (exit 3), so a name the code does not read could never reach a pod.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART, REPO, Helm, HelmError
from support import free_port

PREFIX = {"predictor": "PREDICTOR_", "transformer": "TRANSFORMER_", "explainer": "EXPLAINER_"}
PYTHON = {"drift-detector": REPO / ".venv-drift" / "bin" / "python"}
PACKAGE = {"predictor": "predictor", "transformer": "transformer", "explainer": "explainer",
           "drift-detector": "drift_detector"}  # fmt: skip
EXIT_CONFIG, EXIT_BUNDLE = 2, 3


def containers(docs: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(workload, component, container) of every serving component in the render."""
    found = []
    for d in docs:
        if d["kind"] == "InferenceService":
            for component in PREFIX:
                spec = d["spec"].get(component)
                if spec:
                    found.append((d["metadata"]["name"], component, spec["containers"][0]))
        elif d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"]["containers"]:
                if "drift-detector" in c["image"]:
                    found.append((d["metadata"]["name"], "drift-detector", c))
    return found


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}


def prefixed(docs: list[dict[str, Any]], suffix: str) -> dict[str, str | None]:
    """``<workload>/<component>`` -> the value of its ``<PREFIX><suffix>`` variable (None: absent)."""
    out: dict[str, str | None] = {}
    for workload, component, c in containers(docs):
        prefix = PREFIX.get(component, "DRIFT_")
        out[f"{workload}/{component}"] = env_of(c).get(prefix + suffix)
    return out


def test_defaults_log_json_at_info_and_do_not_trace(default_docs: list[dict[str, Any]]) -> None:
    found = containers(default_docs)
    assert {c for _, c, _ in found} == {"predictor", "transformer", "explainer", "drift-detector"}
    assert set(prefixed(default_docs, "LOG_FORMAT").values()) == {"json"}
    assert set(prefixed(default_docs, "LOG_LEVEL").values()) == {"INFO"}
    assert set(prefixed(default_docs, "OTLP_ENDPOINT").values()) == {None}
    assert set(prefixed(default_docs, "TRACE_SAMPLE_RATIO").values()) == {None}


@pytest.mark.parametrize(
    ("set_values", "suffix", "expected"),
    [
        pytest.param({"logging.format": "text"}, "LOG_FORMAT", "text", id="format"),
        pytest.param({"logging.level": "DEBUG"}, "LOG_LEVEL", "DEBUG", id="level"),
    ],
)
def test_logging_values_reach_every_component(
    helm: Helm, set_values: dict[str, str], suffix: str, expected: str
) -> None:
    found = prefixed(helm.template(set_values=set_values), suffix)
    assert len(found) == 7  # stable and canary predictor, transformer, explainer; the drift detector
    assert set(found.values()) == {expected}


@pytest.mark.parametrize(
    ("extra", "ratio"),
    [
        pytest.param(("--set", "tracing.sampleRatio=0.25"), "0.25", id="ratio-set-string"),
        pytest.param(("--set-json", "tracing.sampleRatio=0.5"), "0.5", id="ratio-json-number"),
        pytest.param((), "1", id="ratio-default"),
    ],
)
def test_tracing_values_reach_the_traced_components(helm: Helm, extra: tuple[str, ...], ratio: str) -> None:
    docs = helm.template(
        set_values={"tracing.otlpEndpoint": "http://otel-collector.monitoring:4318"}, extra=extra
    )
    endpoints = prefixed(docs, "OTLP_ENDPOINT")
    ratios = prefixed(docs, "TRACE_SAMPLE_RATIO")
    traced = {k for k in endpoints if not k.endswith("/drift-detector")}
    assert len(traced) == 6
    assert {endpoints[k] for k in traced} == {"http://otel-collector.monitoring:4318"}
    assert {ratios[k] for k in traced} == {ratio}
    drift = next(k for k in endpoints if k.endswith("/drift-detector"))
    assert endpoints[drift] is None and ratios[drift] is None  # it does not trace: no such variable


BAD = [
    pytest.param({"logging.format": "yaml"}, "/logging/format", id="format"),
    pytest.param({"logging.level": "TRACE"}, "/logging/level", id="level"),
    pytest.param(
        {"tracing.otlpEndpoint": "otel-collector:4318"}, "/tracing/otlpEndpoint", id="endpoint-no-scheme"
    ),
    pytest.param(
        {"tracing.otlpEndpoint": "http://otel:4318/?x=1"}, "/tracing/otlpEndpoint", id="endpoint-query"
    ),
    pytest.param({"tracing.sampleRatio": "1.5"}, "/tracing/sampleRatio", id="ratio-above-1"),
    pytest.param({"tracing.sampleRatio": "-1"}, "/tracing/sampleRatio", id="ratio-negative"),
    pytest.param({"tracing.sampleRatio": "half"}, "/tracing/sampleRatio", id="ratio-not-a-number"),
    pytest.param(
        {"tracing.exporter": "grpc"}, "additional properties 'exporter' not allowed", id="unknown-key"
    ),
]


@pytest.mark.parametrize(("set_values", "where"), BAD)
def test_schema_rejects_bad_values(helm: Helm, set_values: dict[str, str], where: str) -> None:
    with pytest.raises(HelmError) as err:
        helm.template(set_values=set_values)
    assert "values don't meet the specifications of the schema" in err.value.stderr
    assert where in err.value.stderr, err.value.stderr


def _start(
    component: str, container: dict[str, Any], env: dict[str, str], tmp: Path
) -> subprocess.CompletedProcess[str]:
    """The component with the container's args and env; ports free, ``--model_dir`` an empty path."""
    args = [str(a) for a in container.get("args") or []]
    for flag, value in (("--model_dir", str(tmp / "no-bundle")), ("--http_port", str(free_port())),
                        ("--grpc_port", str(free_port()))):  # fmt: skip
        if flag in args:
            args[args.index(flag) + 1] = value
    python = PYTHON.get(component, REPO / ".venv" / "bin" / "python")
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return subprocess.run(
        [str(python), "-m", PACKAGE[component], *args], env={**base, **env}, cwd=tmp,
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


ALL_ON = {
    "logging.format": "text",
    "logging.level": "DEBUG",
    "tracing.otlpEndpoint": "http://otel-collector.monitoring:4318",
    "tracing.sampleRatio": "0.1",
}


def test_every_rendered_variable_is_one_the_component_reads(helm: Helm, tmp_path: Path) -> None:
    """Each distinct (component, args, env) of the render, started: past the variable check, stopped
    at the bundle (exit 3), never at a variable (exit 2)."""
    seen: set[str] = set()
    results = {}
    for workload, component, c in containers(helm.template(set_values=ALL_ON)):
        env = {k: v for k, v in env_of(c).items() if k != "STORAGE_URI"}
        key = json.dumps([component, c.get("args"), env], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        done = _start(component, c, env, tmp_path)
        results[f"{workload}/{component}"] = (done.returncode, done.stderr[-2000:])
    assert {k.split("/")[1] for k in results} == {"predictor", "transformer", "explainer", "drift-detector"}
    for name, (code, stderr) in results.items():
        assert code == EXIT_BUNDLE, f"{name} exited {code}:\n{stderr}"
        assert "--model_dir" in stderr and "unknown variable" not in stderr, stderr


def test_the_check_catches_a_variable_the_component_does_not_read(helm: Helm, tmp_path: Path) -> None:
    """The harness above can fail: a misspelt name given through the chart stops the component."""
    docs = helm.template(
        extra=("--set-json", 'predictor.env=[{"name": "PREDICTOR_LOG_FORMATT", "value": "text"}]')
    )
    _, component, c = next(x for x in containers(docs) if x[1] == "predictor")
    done = _start(component, c, env_of(c), tmp_path)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "unknown variable PREDICTOR_LOG_FORMATT (did you mean PREDICTOR_LOG_FORMAT?)" in done.stderr


def test_the_batch_job_logs_as_the_values_say(helm: Helm) -> None:
    """The batch Job's variables are PREDICTOR_BATCH_LOG_*, the names ``python -m predictor.batch``
    reads (an unknown PREDICTOR_BATCH_* variable stops it with exit 2)."""
    docs = helm.template(
        CHART / "ci" / "batch-values.yaml", set_values={"logging.format": "text", "logging.level": "WARNING"}
    )
    (job,) = [d for d in docs if d["kind"] == "Job" and "batch" in d["metadata"]["name"]]
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert (env["PREDICTOR_BATCH_LOG_FORMAT"], env["PREDICTOR_BATCH_LOG_LEVEL"]) == ("text", "WARNING")
    from predictor.batch.settings import BatchSettings
    from serving_common.operability import check_environment

    check_environment("PREDICTOR_BATCH_", [BatchSettings], environ=env)  # raises on an unknown name
