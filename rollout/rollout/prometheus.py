"""A minimal Prometheus HTTP API client: instant queries to one number."""

from __future__ import annotations

import math

import httpx

from .errors import PrometheusUnavailableError

__all__ = ["Prometheus"]


class Prometheus:
    """``GET /api/v1/query``; any transport error or non-success answer is a
    :class:`~rollout.errors.PrometheusUnavailableError`."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> None:
        """Raise :class:`~rollout.errors.PrometheusUnavailableError` unless Prometheus answers a query."""
        if self.scalar("vector(1)") != 1.0:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} answered vector(1) with something else"
            )

    def scalar(self, promql: str) -> float | None:
        """The query's single value; None when the result is empty or NaN (no data)."""
        try:
            r = self._client.get("/api/v1/query", params={"query": promql})
        except httpx.HTTPError as e:
            raise PrometheusUnavailableError(f"Prometheus at {self.url} unreachable: {e!r}") from e
        try:
            body = r.json()
        except ValueError as e:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} answered {r.status_code} without JSON: {r.text[:200]}"
            ) from e
        if r.status_code != 200 or body.get("status") != "success":
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} answered {r.status_code} to {promql!r}: "
                f"{body.get('errorType', '')} {body.get('error', '')}".rstrip()
            )
        data = body.get("data") or {}
        result = data.get("result")
        if data.get("resultType") == "scalar":
            value = result[1] if result else None
        elif data.get("resultType") == "vector":
            if not result:
                return None
            if len(result) > 1:
                raise PrometheusUnavailableError(
                    f"query {promql!r} returned {len(result)} series; aggregate it to one (sum, max)"
                )
            value = result[0]["value"][1]
        else:
            raise PrometheusUnavailableError(
                f"query {promql!r} returned a {data.get('resultType')}, not a number"
            )
        number = float(value) if value is not None else math.nan
        return None if math.isnan(number) else number
