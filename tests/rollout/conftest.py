"""Rollout CLI fixtures: the fake Kubernetes API (fake_kube_api.py) seeded with the chart's objects,
and the real CLI invoked through click's CliRunner with ``ROLLOUT_*`` env vars."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fake_kube_api import FakeKubeAPI
from rollout.cli import cli
from rollout_cluster import Cluster, Invoke


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    api = FakeKubeAPI().start()
    try:
        c = Cluster(api, api.write_kubeconfig(tmp_path / "kubeconfig"))
        c.seed()
        yield c
    finally:
        api.stop()


@pytest.fixture
def rollout(cluster: Cluster) -> Invoke:
    """``rollout(*args, env=...)``: the real CLI in-process, configured through ROLLOUT_* env vars."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, list(args), env={**cluster.env(), **(env or {})}, catch_exceptions=False)

    return invoke
