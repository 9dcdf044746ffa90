"""Errors of the rollout CLI, each carrying the exit code the CLI ends with.

    RolloutError (exit 1)
    ├── KubeError                      Kubernetes API said no, typed by HTTP status
    │   ├── ConflictError       (3)    409, or a JSON-patch `test` that failed (422): changed meanwhile
    │   ├── NotFoundError       (4)    404
    │   ├── InvalidError        (5)    422 other than a failed `test`, 400
    │   ├── ForbiddenError      (6)    401 / 403
    │   └── KubeUnavailableError(9)    API server not reachable
    ├── RoutesError             (5)    VirtualService lacks the expected routes / destinations
    ├── AnalysisFailedError     (7)    `run`: the canary failed its checks, traffic rolled back to stable
    ├── AnalysisVerdictFailedError (7) `analyze --exit-code`: the verdict is FAIL (nothing changed)
    └── PrometheusUnavailableError (8) Prometheus unreachable or answered an error; weights untouched

Usage errors (bad options, weight 101) are click's own and exit with 2.
Library errors are translated at the boundary (gateway, Prometheus client) with ``raise ... from e``.
"""

from __future__ import annotations

__all__ = [
    "EXIT_ANALYSIS_FAILED",
    "EXIT_CONFLICT",
    "EXIT_FORBIDDEN",
    "EXIT_INVALID",
    "EXIT_KUBE_UNAVAILABLE",
    "EXIT_NOT_FOUND",
    "EXIT_PROMETHEUS_UNAVAILABLE",
    "EXIT_USAGE",
    "AnalysisFailedError",
    "AnalysisVerdictFailedError",
    "ConflictError",
    "ForbiddenError",
    "InvalidError",
    "KubeError",
    "KubeUnavailableError",
    "NotFoundError",
    "PrometheusUnavailableError",
    "RolloutError",
    "RoutesError",
]

EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_NOT_FOUND = 4
EXIT_INVALID = 5
EXIT_FORBIDDEN = 6
EXIT_ANALYSIS_FAILED = 7
EXIT_PROMETHEUS_UNAVAILABLE = 8
EXIT_KUBE_UNAVAILABLE = 9


class RolloutError(Exception):
    """Base of every error the CLI reports; ``exit_code`` is what the process exits with."""

    exit_code = 1


class KubeError(RolloutError):
    """The Kubernetes API refused a request; ``status`` is its HTTP status (0 when unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ConflictError(KubeError):
    exit_code = EXIT_CONFLICT


class NotFoundError(KubeError):
    exit_code = EXIT_NOT_FOUND


class InvalidError(KubeError):
    exit_code = EXIT_INVALID


class ForbiddenError(KubeError):
    exit_code = EXIT_FORBIDDEN


class KubeUnavailableError(KubeError):
    exit_code = EXIT_KUBE_UNAVAILABLE


class RoutesError(RolloutError):
    """The VirtualService does not have the routes this tool manages (see the README)."""

    exit_code = EXIT_INVALID


class AnalysisFailedError(RolloutError):
    """The canary failed its analysis; all traffic went back to stable before this was raised."""

    exit_code = EXIT_ANALYSIS_FAILED


class AnalysisVerdictFailedError(RolloutError):
    """``analyze --exit-code``: the canary fails its checks; read-only, nothing was changed."""

    exit_code = EXIT_ANALYSIS_FAILED


class PrometheusUnavailableError(RolloutError):
    """Prometheus could not be queried; no weight was changed."""

    exit_code = EXIT_PROMETHEUS_UNAVAILABLE
