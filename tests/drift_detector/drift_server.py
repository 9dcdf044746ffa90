"""Starting the real drift detector (``.venv-drift/bin/python -m drift_detector``) on a free port."""

from __future__ import annotations

from pathlib import Path

from support import VENV_DRIFT_PYTHON, ServerProcess, free_port


def start_detector(bundle: Path, log: Path, env: dict[str, str]) -> tuple[str, ServerProcess]:
    port = free_port()
    proc = ServerProcess(
        ["-m", "drift_detector", "--model_dir", str(bundle), "--http_port", str(port), "--host", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{port}/ready",
        python=VENV_DRIFT_PYTHON,
        env=env,
        log_path=log,
    )
    proc.start()
    return f"http://127.0.0.1:{port}", proc
