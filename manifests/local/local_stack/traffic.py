"""Client traffic for the demo and the system tests: raw records through the front door.

Records are the bundle's own reference rows decoded back to raw fields (so they always
validate); ``shifted`` picks the quarter of them with the highest BMI and glucose, a
sub-population whose distribution the drift detector must flag.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from serving_common import Bundle

__all__ = ["Answer", "Background", "predict", "records", "send"]


def records(bundle: Path, *, shifted: bool = False) -> list[dict[str, Any]]:
    spec = Bundle.open(bundle).spec()
    rows = np.load(bundle / "reference.npy")
    if shifted:
        names = spec.names
        score = rows[:, names.index("bmi")] + rows[:, names.index("glu")] / 4
        rows = rows[np.argsort(score)[-len(rows) // 4 :]]
    return [spec.decode_row(r) for r in rows]


@dataclass(frozen=True)
class Answer:
    status: int
    model_version: str | None
    body: Any


def predict(
    client: httpx.Client, url: str, model: str, record: dict[str, Any], headers: dict[str, str]
) -> Answer:
    r = client.post(f"{url}/v1/models/{model}:predict", json={"instances": [record]}, headers=headers)
    try:
        body = r.json()
    except ValueError:
        body = r.text
    version = body.get("model_version") if isinstance(body, dict) else None
    return Answer(r.status_code, version, body)


def send(
    url: str,
    model: str,
    recs: list[dict[str, Any]],
    n: int,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 4,
    timeout: float = 15.0,
) -> list[Answer]:
    """``n`` single-record requests (cycling through ``recs``), ``concurrency`` at a time, in order."""
    with (
        httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=concurrency)) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        return list(
            pool.map(lambda i: predict(client, url, model, recs[i % len(recs)], headers or {}), range(n))
        )


class Background:
    """Steady traffic in a thread (about ``rate`` requests per second) until stopped."""

    def __init__(self, url: str, model: str, recs: list[dict[str, Any]], rate: float = 20.0) -> None:
        self.url, self.model, self.recs, self.period = url, model, recs, 1.0 / rate
        self.stopped = threading.Event()
        self.answers: list[Answer] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=15.0) as client:
            i = 0
            while not self.stopped.wait(self.period):
                try:
                    self.answers.append(
                        predict(client, self.url, self.model, self.recs[i % len(self.recs)], {})
                    )
                except httpx.HTTPError:
                    self.answers.append(Answer(0, None, None))
                i += 1

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
