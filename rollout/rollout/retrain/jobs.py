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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from ..kube import KubeGateway

__all__ = ["JobGateway", "JobState", "job_from_cronjob"]

Obj = dict[str, Any]
RUN_LABEL = "model-serving.io/retrain-run"
TRIGGER_LABEL = "model-serving.io/trigger"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


def job_from_cronjob(cronjob: Obj, name: str, labels: dict[str, str], extra_args: Sequence[str] = ()) -> Obj:
    """The Job ``kubectl create job NAME --from=cronjob/...`` makes, with ``labels`` added and
    ``extra_args`` appended to the first container's ``args`` (nothing else differs)."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    if extra_args:
        container = template["spec"]["template"]["spec"]["containers"][0]
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
        self, cronjob: str, name: str, labels: dict[str, str], extra_args: Sequence[str] = ()
    ) -> Obj:
        job = job_from_cronjob(self.cronjob(cronjob), name, labels, extra_args)
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
