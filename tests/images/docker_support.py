"""A docker client for the image tests: builds images from the component Dockerfiles, runs
containers as the chart runs pods, removes them by id."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from support import REPO, free_port

ENV_FILE = Path("/tmp/ctr-setup/env")  # written by ../shared/tools/docker-offline.sh up
TAG = "test"


def docker_binary() -> str | None:
    if os.environ.get("DOCKER"):
        chosen = shutil.which(os.environ["DOCKER"])
        return chosen if chosen and os.access(chosen, os.X_OK) else None
    # Debian's client builds with the daemon's BuildKit without the buildx plugin
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_tool(name: str) -> str | None:
    local = REPO / ".tools" / "bin" / name
    return str(local) if os.access(local, os.X_OK) else shutil.which(name)


def host_network_only() -> bool:
    """docker-offline.sh falls back to a daemon without a bridge; containers then share the host network."""
    return ENV_FILE.exists() and "--network host" in ENV_FILE.read_text()


@dataclass
class Docker:
    binary: str
    host_network: bool
    containers: list[str] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args[:3])} ... failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        return proc

    def build(self, component: str) -> str:
        image = f"model-serving/{component}:{TAG}"
        args = ["build", "-f", f"{component}/Dockerfile", "-t", image]
        if self.host_network:
            args += ["--network", "host"]
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        proc = subprocess.run(
            [self.binary, *args, str(REPO)],
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
            env=env,
        )
        assert proc.returncode == 0, f"building {image} failed:\n{(proc.stdout + proc.stderr)[-6000:]}"
        return image

    def start(
        self, image: str, *args: str, port: int, mounts: dict[Path, str], network: str | None, name: str
    ) -> str:
        """Run ``image`` as the chart runs it: uid 1000, read-only root, no capabilities."""
        cmd = ["run", "-d", "--name", name, "--user", "1000:1000", "--read-only", "--tmpfs", "/tmp"]
        cmd += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        for host, inside in mounts.items():
            cmd += ["-v", f"{host}:{inside}:ro"]
        if self.host_network:
            cmd += ["--network", "host"]
        else:
            cmd += ["-p", f"127.0.0.1:{port}:8080"]
            if network:
                cmd += ["--network", network, "--network-alias", name]
        container = self.run(*cmd, image, *args).stdout.strip()
        self.containers.append(container)
        return container

    def run_once(
        self, image: str, entrypoint: str, *args: str, network: str | None
    ) -> subprocess.CompletedProcess[str]:
        """A short-lived container (like a helm test pod), removed when it exits."""
        cmd = [self.binary, "run", "--rm", "--user", "1000:1000", "--read-only", "--tmpfs", "/tmp"]
        cmd += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--entrypoint", entrypoint]
        if self.host_network:
            cmd += ["--network", "host"]
        elif network:
            cmd += ["--network", network]
        name = f"once-{uuid.uuid4().hex[:8]}"
        try:
            return subprocess.run(
                [*cmd, "--name", name, image, *args], capture_output=True, text=True, timeout=180, check=False
            )
        finally:
            self.run("rm", "-f", name, check=False)  # already gone unless the client timed out

    def logs(self, container: str) -> str:
        proc = self.run("logs", "--tail", "80", container, check=False)
        return proc.stdout + proc.stderr

    def wait_ready(self, container: str, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            state = self.run("inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip()
            if state != "true":
                raise AssertionError(f"container exited before ready:\n{self.logs(container)}")
            try:
                r = httpx.get(url, timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.5)
        raise AssertionError(f"{url} not ready after {timeout}s ({last}):\n{self.logs(container)}")

    def remove(self, container: str) -> None:
        self.run("rm", "-f", container, check=False)
        if container in self.containers:
            self.containers.remove(container)

    def remove_all(self) -> None:
        for container in reversed(self.containers):
            self.run("rm", "-f", container, check=False)
        self.containers.clear()


def server_ports(docker: Docker) -> tuple[int, str, str]:
    """(host port to call, --http_port and --grpc_port inside the container)."""
    port = free_port()
    if docker.host_network:
        return port, str(port), str(free_port())
    return port, "8080", "8081"


def container_url(docker: Docker, name: str, port: int) -> str:
    """How one container reaches another's HTTP port."""
    return f"http://127.0.0.1:{port}" if docker.host_network else f"http://{name}:8080"
