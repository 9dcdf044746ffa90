"""The shared detector's settings, and the recording sink its tests post to (stdlib only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from recording_receiver import Recorder, recording

WINDOW = 100
"""DRIFT_WINDOW_SIZE of the shared detector."""
WATCHED = ["shift", "calm", "income", "income-canary", "bad", "logger", "predictor-e2e", "transformer-e2e"]
"""DRIFT_INFERENCE_SERVICES of the shared detector: anything else is a 400."""

Receiver = Recorder


@contextmanager
def receiving(delay: float = 0.0, status: int = 202) -> Iterator[Recorder]:
    """Serve on a free port; each POST is recorded, answered ``status`` after ``delay`` seconds."""
    with recording(status=status, delay=delay) as box:
        yield box
