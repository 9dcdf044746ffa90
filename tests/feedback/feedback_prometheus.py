"""A real Prometheus (Debian's package, or ``.tools/bin``) scraping one target every second."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from support import REPO, ServerProcess, free_port


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or str(REPO / ".tools" / "bin" / "prometheus")
    if not os.access(found, os.X_OK):
        pytest.fail("the prometheus binary is needed (apt-get install -y prometheus, or `make tools`)")
    return found


def scraping(target: str, folder: Path) -> tuple[str, ServerProcess]:
    """Prometheus scraping ``host:port`` (started, ready); its URL and process (stop it)."""
    config = folder / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
        f"scrape_configs:\n  - job_name: drift-detector\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    process = ServerProcess(
        [
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        ready_url=f"http://127.0.0.1:{port}/-/ready",
        python=prometheus_binary(),
        log_path=folder / "prometheus.log",
        ready_timeout=60,
    )
    process.start()
    return f"http://127.0.0.1:{port}", process


def wait_for(url: str, query: str, series: int) -> None:
    """Until ``query`` returns ``series`` series (bounded: 30 s)."""
    found = 0
    for _ in range(100):
        answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
        found = len(answer["data"]["result"])
        if found >= series:
            return
        time.sleep(0.3)
    raise AssertionError(f"{query}: {found} series, expected {series}")
