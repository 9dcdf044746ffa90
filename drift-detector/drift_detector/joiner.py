"""Request and response events joined on ``ce-id``: a request's rows count only once answered.

KServe's agent logs every request before proxying it, but a response only when the status was
200. So a request's rows are held until its response event arrives (either order: the agent's
workers send in parallel); a request still unanswered ``timeout`` seconds after it arrived was
answered 400/404/503 or never, and is forgotten (the caller counts it as unanswered). A response
that came first is remembered for the same time. Both tables are bounded: over ``capacity`` the
oldest request is forgotten early (and counted) and the oldest early response dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drift_detector.cloudevent import StreamKey

__all__ = ["Joiner"]


@dataclass(slots=True)
class _Held:
    deadline: float
    key: StreamKey
    rows: np.ndarray


class Joiner:
    def __init__(self, timeout: float, capacity: int) -> None:
        self.timeout = timeout
        self.capacity = capacity
        self._requests: dict[str, _Held] = {}
        """Unanswered requests by ``ce-id``, oldest first (dicts keep insertion order)."""
        self._answers: dict[str, float] = {}
        """Response ids seen before their request, with their deadline, oldest first."""

    @property
    def held(self) -> int:
        return len(self._requests)

    def request(
        self, event_id: str, key: StreamKey, rows: np.ndarray, now: float
    ) -> tuple[np.ndarray | None, list[StreamKey]]:
        """The rows if the response already arrived, else ``None`` (held); and the streams of
        requests forgotten to make room (or replaced by a request reusing the id)."""
        if self._answers.pop(event_id, None) is not None:
            return rows, []
        forgotten: list[StreamKey] = []
        previous = self._requests.pop(event_id, None)
        if previous is not None:  # a caller reused its ce-id before the first was answered
            forgotten.append(previous.key)
        self._requests[event_id] = _Held(now + self.timeout, key, rows)
        while len(self._requests) > self.capacity:
            forgotten.append(self._requests.pop(next(iter(self._requests))).key)
        return None, forgotten

    def response(self, event_id: str, now: float) -> tuple[StreamKey, np.ndarray] | None:
        """The held request (its stream and rows) this response answers, else ``None``."""
        held = self._requests.pop(event_id, None)
        if held is not None:
            return held.key, held.rows
        self._answers.pop(event_id, None)
        self._answers[event_id] = now + self.timeout
        while len(self._answers) > self.capacity:
            del self._answers[next(iter(self._answers))]
        return None

    def expire(self, now: float) -> list[StreamKey]:
        """Forget what is older than the timeout; the streams of the unanswered requests."""
        forgotten: list[StreamKey] = []
        while self._requests:
            first = next(iter(self._requests))
            if self._requests[first].deadline > now:
                break
            forgotten.append(self._requests.pop(first).key)
        while self._answers:
            first = next(iter(self._answers))
            if self._answers[first] > now:
                break
            del self._answers[first]
        return forgotten
