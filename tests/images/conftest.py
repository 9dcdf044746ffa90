"""Docker fixtures: a reachable daemon (skip visibly without one; REQUIRE_DOCKER=1 makes it mandatory),
a test network, and the bundle made readable for the container user."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_support import Docker, docker_binary, host_network_only


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    binary = docker_binary()
    reason = "no docker client found"
    if binary is not None:
        proc = subprocess.run([binary, "info"], capture_output=True, text=True, timeout=30, check=False)
        reason = "" if proc.returncode == 0 else f"no Docker daemon reachable ({proc.stderr.strip()[:200]})"
    if reason:
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"{reason}; REQUIRE_DOCKER=1 makes the image tests mandatory")
        pytest.skip(f"{reason}: start one with ../shared/tools/docker-offline.sh up")
    assert binary is not None
    d = Docker(binary, host_network_only())
    yield d
    d.remove_all()


@pytest.fixture(scope="session")
def network(docker: Docker) -> Iterator[str | None]:
    """A user-defined bridge network so containers reach each other by name (None in host mode)."""
    if docker.host_network:
        yield None
        return
    name = f"model-serving-test-{uuid.uuid4().hex[:8]}"
    docker.run("network", "create", name)
    yield name
    docker.remove_all()
    docker.run("network", "rm", name, check=False)


@pytest.fixture(scope="session")
def readable_bundle(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stable bundle, world-readable, so uid 1000 in the container can read the mount."""
    out = tmp_path_factory.mktemp("mounted") / "gbm"
    shutil.copytree(gbm_bundle, out)
    for path in [out.parent, out, *out.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out
