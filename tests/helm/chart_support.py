"""Render the chart with real helm and validate every document offline.

* KServe, Istio and prometheus-operator kinds: the CRDs vendored in ``tests/helm/schemas/``
  (sources in its SOURCES.md), each version's ``openAPIV3Schema`` converted to JSON Schema that
  rejects unknown fields (``additionalProperties: false`` wherever a schema lists properties and
  does not preserve unknown fields), as the API server's structural pruning plus
  ``kubectl --validate=strict`` would.
* Core kinds: Kubernetes' own JSON schemas (strict variant) shipped by the PyPI package
  ``kubernetes-validate``, for the oldest and the newest Kubernetes the chart supports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "model-serving"
CRDS = Path(__file__).resolve().parent / "schemas"
TOOLS_BIN = REPO / ".tools" / "bin"
# Chart.yaml kubeVersion ">=1.29.0-0"; 1.37 is the newest kubernetes-validate ships
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
RELEASE = "model-serving"
NAMESPACE = "model-serving"
CI_SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))

CRD_GROUPS = ("serving.kserve.io", "networking.istio.io", "security.istio.io", "monitoring.coreos.com")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find_tool(name: str) -> str | None:
    local = TOOLS_BIN / name
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


class HelmError(RuntimeError):
    """helm exited non-zero; ``stderr`` holds its message."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"{' '.join(args)} failed:\n{stderr}")
        self.stderr = stderr


@dataclass
class Helm:
    binary: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise HelmError(cmd, proc.stderr)
        return proc

    def template(
        self,
        *values_files: Path,
        set_values: Mapping[str, str] | None = None,
        chart: Path = CHART,
        extra: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE, *extra]
        for f in values_files:
            args += ["-f", str(f)]
        for k, v in (set_values or {}).items():
            args += ["--set", f"{k}={v}"]
        return parse_documents(self.run(*args).stdout)


def parse_documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


# --------------------------------------------------------------------------------------------
# CRD schemas -> JSON Schema


def openapi_to_jsonschema(node: Any) -> Any:
    """One ``openAPIV3Schema`` node as JSON Schema, closed where Kubernetes would prune."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: openapi_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = openapi_to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [openapi_to_jsonschema(sub) for sub in value]
        elif key == "pattern" and value.startswith("^(?i)"):
            out[key] = "(?i)^" + value[len("^(?i)") :]  # Go allows inline flags anywhere, Python only first
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
ROOT_FIELDS: dict[str, Any] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
            "namespace": {"type": "string"},
            "labels": _STRING_MAP,
            "annotations": _STRING_MAP,
        },
    },
}


@cache
def crd_validators(crds_dir: Path) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """``(apiVersion, kind) -> validator`` for every served version of every CRD in the folder."""
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(crds_dir.rglob("*.yaml")):
        for crd in parse_documents(path.read_text()):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
                # the API server always accepts these at the root, whether or not the CRD lists them
                schema["properties"] = {**ROOT_FIELDS, **schema.get("properties", {})}
                schema["required"] = sorted({"apiVersion", "kind", "metadata", *schema.get("required", [])})
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


@dataclass
class Problem:
    document: str
    messages: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.document}:\n  " + "\n  ".join(self.messages)


def doc_name(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('apiVersion')}/{doc.get('kind')} {doc.get('metadata', {}).get('name')}"


def validate_document(doc: dict[str, Any], crds_dir: Path) -> list[str]:
    """Messages for everything wrong with one rendered document (empty when it is valid)."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    if group in CRD_GROUPS:
        validator = crd_validators(crds_dir).get((api_version, kind))
        if validator is None:
            return [f"no CRD in {crds_dir} serves {api_version} {kind}"]
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        ]
    messages = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            messages.append(
                f"Kubernetes {version}: {'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            )
        except kubernetes_validate.SchemaNotFoundError as e:
            messages.append(f"Kubernetes {version}: {e.message}")
    return messages


def validate_all(docs: list[dict[str, Any]], crds_dir: Path) -> list[Problem]:
    problems = []
    for doc in docs:
        messages = validate_document(doc, crds_dir)
        if messages:
            problems.append(Problem(doc_name(doc), messages))
    return problems


# --------------------------------------------------------------------------------------------
# Semantic helpers


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def kserve_services(isvc: dict[str, Any]) -> set[str]:
    """Service names KServe (Standard mode) creates for one InferenceService: ``<isvc>-<component>``

    (``pkg/constants``: ``PredictorServiceName``, ``TransformerServiceName``, ``ExplainerServiceName``).
    """
    name = isvc["metadata"]["name"]
    return {f"{name}-{c}" for c in ("predictor", "transformer", "explainer") if c in isvc["spec"]}


def service_fqdn(name: str, namespace: str = NAMESPACE) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """``(where, pod spec, is_helm_test)`` for every pod template the release renders."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "InferenceService":
            for component in ("predictor", "transformer", "explainer"):
                if component in doc["spec"]:
                    yield f"InferenceService {name} {component}", doc["spec"][component], False
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{kind} {name}", doc["spec"]["template"]["spec"], False
        elif kind == "CronJob":
            yield f"{kind} {name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"], False
        elif kind == "Pod":
            hook = doc["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
            yield f"Pod {name}", doc["spec"], hook
