"""The chart rendered with the local values: ``helm template`` with the vendored helm."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import ChartError
from .settings import StackSettings

__all__ = ["Render", "render"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class Render:
    """The rendered objects the local stack is made of."""

    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind]

    def one(self, kind: str) -> Obj:
        found = self.of_kind(kind)
        if len(found) != 1:
            raise ChartError(
                f"the chart rendered {len(found)} {kind} objects; the local stack needs exactly one"
            )
        return found[0]


def render(settings: StackSettings) -> Render:
    helm = settings.helm if shutil.which(settings.helm) else shutil.which("helm")
    if not helm:
        raise ChartError(f"helm not found at {settings.helm} nor on PATH (run `make tools`)")
    cmd = [
        helm,
        "template",
        settings.release,
        str(settings.chart),
        "--namespace",
        settings.namespace,
        "-f",
        str(settings.values),
    ]
    for s in settings.helm_set:
        cmd += ["--set", s]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise ChartError(f"helm template failed ({' '.join(cmd)}):\n{done.stderr.strip()}")
    objects = [o for o in yaml.safe_load_all(done.stdout) if isinstance(o, dict)]
    return Render(objects)
