"""Jobs from the chart's suspended CronJobs (``kubectl create job --from=cronjob/NAME``), and their outcome.

A Job made here is the CronJob's ``jobTemplate`` as the chart rendered it, plus what ``kubectl``
adds (name, ``cronjob.kubernetes.io/instantiate: manual``, the owner reference) and two labels:
``model-serving.io/retrain-run`` (the run) and ``model-serving.io/trigger`` (why). The outcome of
a finished retraining Job is its pod's termination message: the run summary ``python -m training
retrain --result /dev/termination-log`` writes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from ..errors import InvalidError
from ..kube import KubeGateway

__all__ = ["JobGateway", "JobState", "job_from_cronjob", "mounted_path"]

Obj = dict[str, Any]
RUN_LABEL = "model-serving.io/retrain-run"
TRIGGER_LABEL = "model-serving.io/trigger"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


def mounted_path(pod: Obj, storage_uri: str) -> str:
    """Where the first container of pod spec ``pod`` sees the bundle ``pvc://<claim>/<path>``: the
    mount of the volume on that claim, plus ``<path>``. ``InvalidError`` naming the claim when the
    URI is not on a claim the pod mounts."""
    if not storage_uri.startswith("pvc://"):
        raise InvalidError(
            f"{storage_uri} is not a pvc:// URI: the retraining Job reads bundles from a claim", 422
        )
    claim, _, path = storage_uri.removeprefix("pvc://").partition("/")
    volumes = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("volumes") or []
        if isinstance(v.get("persistentVolumeClaim"), dict)
    }
    for mount in (pod.get("containers") or [{}])[0].get("volumeMounts") or []:
        if volumes.get(mount.get("name")) == claim and not mount.get("subPath"):
            return "/".join(p for p in (str(mount["mountPath"]).rstrip("/"), path.strip("/")) if p)
    raise InvalidError(
        f"{storage_uri}: the retraining Job does not mount claim {claim!r} "
        f"(it mounts {sorted(set(volumes.values()))})",
        422,
    )


def job_from_cronjob(
    cronjob: Obj,
    name: str,
    labels: dict[str, str],
    extra_args: Sequence[str] = (),
    set_args: Mapping[str, str] | None = None,
) -> Obj:
    """The Job ``kubectl create job NAME --from=cronjob/...`` makes, with ``labels`` added,
    the value after each option of ``set_args`` replaced (``{"--champion": DIR}``) and
    ``extra_args`` appended in the first container's ``args`` (nothing else differs)."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    container = template["spec"]["template"]["spec"]["containers"][0]
    for option, value in (set_args or {}).items():
        args = [str(a) for a in container.get("args") or []]
        if option not in args[:-1]:
            raise InvalidError(f"CronJob {cronjob['metadata']['name']}'s args have no {option} to set", 422)
        args[args.index(option) + 1] = value
        container["args"] = args
    if extra_args:
        container["args"] = [*(container.get("args") or []), *extra_args]
    meta = template.get("metadata") or {}
    clean = {k: _LABEL_VALUE.sub("-", v)[:63].strip("-._") or "unknown" for k, v in labels.items()}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": cronjob["metadata"]["namespace"],
            "labels": {**(meta.get("labels") or {}), **clean},
            "annotations": {**(meta.get("annotations") or {}), "cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cronjob["metadata"]["name"],
                    "uid": cronjob["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": template["spec"],
    }


@dataclass(frozen=True)
class JobState:
    name: str
    finished: bool
    succeeded: bool
    message: str
    """The pod's termination message (finished Jobs), or why the Job failed."""


def _state(job: Obj) -> tuple[bool, bool, str]:
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return True, True, ""
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return True, False, f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}".strip(": ")
    return False, False, ""


class JobGateway:
    """Jobs, CronJobs and Pods in the gateway's namespace (``batch/v1``, ``v1``)."""

    def __init__(self, gateway: KubeGateway) -> None:
        self.namespace = gateway.namespace
        self._call = gateway.call
        self._batch = client.BatchV1Api(gateway.api_client)
        self._core = client.CoreV1Api(gateway.api_client)

    def cronjob(self, name: str) -> Obj:
        return self._call(
            f'cronjobs.batch "{name}"', self._batch.read_namespaced_cron_job, name, self.namespace
        )

    def create_from(
        self,
        cronjob: str,
        name: str,
        labels: dict[str, str],
        extra_args: Sequence[str] = (),
        champion_uri: str = "",
    ) -> Obj:
        """A Job from ``cronjob``; with ``champion_uri``, its ``--champion`` is where the Job
        mounts that bundle (:func:`mounted_path`)."""
        source = self.cronjob(cronjob)
        set_args = None
        if champion_uri:
            pod = source["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            set_args = {"--champion": mounted_path(pod, champion_uri)}
        job = job_from_cronjob(source, name, labels, extra_args, set_args)
        return self._call(f'jobs.batch "{name}"', self._batch.create_namespaced_job, self.namespace, job)

    def active(self, selector: str) -> list[str]:
        """Names of the unfinished Jobs matching ``selector``."""
        jobs = self._call(
            "jobs.batch", self._batch.list_namespaced_job, self.namespace, label_selector=selector
        )
        return [j["metadata"]["name"] for j in jobs.get("items", []) if not _state(j)[0]]

    def state(self, name: str) -> JobState:
        job = self._call(f'jobs.batch "{name}"', self._batch.read_namespaced_job, name, self.namespace)
        finished, succeeded, why = _state(job)
        message = why
        if finished:
            pods = self._call(
                "pods", self._core.list_namespaced_pod, self.namespace, label_selector=f"job-name={name}"
            )
            for pod in pods.get("items", []):
                for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                    term = (cs.get("state") or {}).get("terminated") or {}
                    if term.get("message"):
                        message = str(term["message"])
        return JobState(name, finished, succeeded, message)
