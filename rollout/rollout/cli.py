"""The ``rollout`` command: see, shift, promote, abort and automate a canary.

Layering (kept): this module (commands) -> progressive / analysis / router / readiness ->
kube (the only module importing ``kubernetes``) and prometheus (the only one importing ``httpx``).
Every option also reads a ``ROLLOUT_*`` environment variable (shown in ``--help``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

import click

from . import render
from .analysis import (
    DEFAULT_DRIFT_QUERY,
    DEFAULT_LABEL,
    DEFAULT_METRIC_FILTER,
    Metrics,
    QuerySet,
    Thresholds,
    Verdict,
    collect,
    judge,
)
from .errors import AnalysisVerdictFailedError, PrometheusUnavailableError, RolloutError
from .gateway import Gateway
from .kube import ISTIO, connect
from .local import LocalStack, connect_local
from .progressive import STATE_ANNOTATION, Progressive, RunOptions, RunState, now_iso, parse_steps
from .prometheus import Prometheus
from .readiness import readiness
from .router import DECISION_ANNOTATION, Backend, IstioRouter, Routes, Weights, decision

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("rollout")


def _env(name: str) -> str:
    return f"ROLLOUT_{name}"


# options ---------------------------------------------------------------------------------------
def _seconds(value: str | float) -> float:
    """``90``, ``1.5``, ``500ms``, ``30s``, ``2m``, ``1h`` -> seconds."""
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", value)
    if not m:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 30s, 2m, 500ms)")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    seconds = _seconds(value)
    if seconds <= 0:
        raise click.BadParameter("must be positive")
    return seconds


def _window(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"\d+(ms|s|m|h)", value):
        raise click.BadParameter(f"{value!r} is not a PromQL range (e.g. 30s, 1m, 5m)")
    return value


_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'


def _matchers(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value and not re.fullmatch(f"{_MATCHER}(?:,{_MATCHER})*", value):
        raise click.BadParameter(
            f'{value!r} is not a list of PromQL label matchers (e.g. caller!="explainer")'
        )
    return value.strip()


def _required(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """Required, with a default that only --router local provides (click lets a callable's None through)."""
    if not value:
        if ctx.params.get("router") == "local":  # no stack description: exit 9, "make up"
            LocalStack(ctx.params.get("local_stack") or ".stack")
        raise click.MissingParameter(ctx=ctx, param=param)
    return value


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def _opt(*names: str, env: str, **kw: Any) -> Callable[[F], F]:
    return click.option(*names, envvar=_env(env), show_envvar=True, **kw)


kube_options = _compose(
    _opt(
        "--virtual-service",
        "virtual_service",
        env="VIRTUAL_SERVICE",
        required=True,
        default=lambda: _local_default("virtualService.name"),
        callback=_required,
        help="Name of the Istio VirtualService that splits traffic (--router local: the stack's).",
    ),
    _opt(
        "--namespace",
        "-n",
        env="NAMESPACE",
        default=None,
        help="Namespace (default: the kubeconfig context's, in a pod its own, else 'default').",
    ),
    click.option(
        "--kubeconfig",
        envvar="ROLLOUT_KUBECONFIG",
        show_envvar=True,
        default=None,
        help="Kubeconfig file (default: in-cluster config in a pod, else $KUBECONFIG or ~/.kube/config).",
    ),
    _opt("--context", env="CONTEXT", default=None, help="Kubeconfig context."),
    _opt(
        "--route",
        env="ROUTE",
        default="primary",
        show_default=True,
        help="Name of the weighted http route with the stable and canary destinations.",
    ),
    _opt(
        "--stable-host",
        env="STABLE_HOST",
        default=None,
        help="Substring of the stable destination host (default: host named after --stable).",
    ),
    _opt(
        "--canary-host",
        env="CANARY_HOST",
        default=None,
        help="Substring of the canary destination host (default: host named after --canary).",
    ),
    _opt(
        "--patch-type",
        env="PATCH_TYPE",
        type=click.Choice(["merge", "json"]),
        default="merge",
        show_default=True,
        help="merge: merge patch pinning metadata.resourceVersion (409 on any concurrent change); "
        "json: JSON patch with test ops on the route's hosts and weights.",
    ),
)
side_options = _compose(
    _opt(
        "--router",
        env="ROUTER",
        type=click.Choice(["kubernetes", "local"]),
        default="kubernetes",
        show_default=True,
        is_eager=True,
        help="kubernetes: the VirtualService in a cluster; local: the one of `make up` "
        "(a file in --local-stack, routed by a local Envoy), names and Prometheus defaulting to the stack's.",
    ),
    _opt(
        "--local-stack",
        env="LOCAL_STACK",
        default=".stack",
        show_default=True,
        is_eager=True,
        help="State folder of `make up` (with --router local).",
    ),
    _opt(
        "--stable",
        env="STABLE",
        required=True,
        default=lambda: _local_default("stable"),
        callback=_required,
        help="Name of the stable InferenceService (--router local: the stack's).",
    ),
    _opt(
        "--canary",
        env="CANARY",
        required=True,
        default=lambda: _local_default("canary"),
        callback=_required,
        help="Name of the canary InferenceService (--router local: the stack's).",
    ),
)


def _local_default(key: str, fallback: str | None = None) -> str | None:
    """A default read from the local stack's description when the command runs with --router local."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.params.get("router") != "local":
        return fallback
    try:
        value: Any = LocalStack(ctx.params.get("local_stack") or ".stack").data
    except RolloutError:
        return fallback  # reported by the command itself, with the exit code of its type
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return str(value) if value is not None else fallback


prometheus_options = _compose(
    _opt(
        "--prometheus-url",
        env="PROMETHEUS_URL",
        default=lambda: _local_default("prometheus", "http://localhost:9090"),
        show_default="http://localhost:9090; --router local: the stack's",
        help="Prometheus base URL ('' to skip metrics in status).",
    ),
    _opt(
        "--metric-label",
        env="METRIC_LABEL",
        default=DEFAULT_LABEL,
        show_default=True,
        help="Label whose value is the InferenceService name on the metrics (the chart's PodMonitor: "
        "inferenceservice).",
    ),
    _opt(
        "--metric-filter",
        env="METRIC_FILTER",
        default=DEFAULT_METRIC_FILTER,
        show_default=True,
        callback=_matchers,
        help="Label matchers added to both sides' request series; the default leaves the explainer's "
        "calls out of traffic, errors and latency ('' for every caller).",
    ),
    _opt(
        "--metric-prefix",
        env="METRIC_PREFIX",
        default="predictor",
        show_default=True,
        help="Prefix of <prefix>_requests_total and <prefix>_request_duration_seconds (e.g. transformer).",
    ),
    _opt(
        "--window",
        env="WINDOW",
        default="1m",
        show_default=True,
        callback=_window,
        help="PromQL range the rates and quantiles are computed over.",
    ),
    _opt(
        "--drift-query",
        env="DRIFT_QUERY",
        default=DEFAULT_DRIFT_QUERY,
        show_default=True,
        help="PromQL giving >0 when drift is detected; {inferenceservice} and {selector} are filled in "
        "('' to skip).",
    ),
)
threshold_options = _compose(
    _opt(
        "--min-requests",
        env="MIN_REQUESTS",
        type=click.FloatRange(min=0),
        default=10,
        show_default=True,
        help="Canary requests needed in the window for a check to pass (no traffic fails the check).",
    ),
    _opt(
        "--max-error-rate",
        env="MAX_ERROR_RATE",
        type=click.FloatRange(0, 1),
        default=0.01,
        show_default=True,
        help="Highest canary server-error ratio.",
    ),
    _opt(
        "--max-error-rate-increase",
        env="MAX_ERROR_RATE_INCREASE",
        type=click.FloatRange(0, 1),
        default=0.01,
        show_default=True,
        help="Highest canary error ratio minus the stable's.",
    ),
    _opt(
        "--max-p99",
        env="MAX_P99",
        default="1s",
        show_default=True,
        callback=_duration,
        help="Highest canary p99 latency.",
    ),
    _opt(
        "--max-p99-ratio",
        env="MAX_P99_RATIO",
        type=click.FloatRange(min=1),
        default=1.5,
        show_default=True,
        help="Highest canary p99 as a multiple of the stable's (plus --p99-slack).",
    ),
    _opt(
        "--p99-slack",
        env="P99_SLACK",
        default="25ms",
        show_default=True,
        callback=_duration,
        help="Absolute allowance added to the ratio limit (sub-millisecond p99s are noisy).",
    ),
    _opt(
        "--max-accuracy-drop",
        env="MAX_ACCURACY_DROP",
        type=click.FloatRange(0, 1),
        default=None,
        help="Quality gate: highest stable live accuracy minus the canary's (feedback store); unset: off.",
    ),
    _opt(
        "--min-labelled",
        env="MIN_LABELLED",
        type=click.FloatRange(min=0),
        default=100,
        show_default=True,
        help="Labelled predictions each side needs for the quality gate to pass (no data is not a pass).",
    ),
    _opt(
        "--fail-on-drift/--ignore-drift",
        "fail_on_drift",
        env="FAIL_ON_DRIFT",
        default=True,
        show_default=True,
        help="Whether drift detected on the canary fails a check.",
    ),
)
output_option = click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
write_options = _compose(
    click.option("--dry-run", is_flag=True, help="Print the patch that would be sent; change nothing."),
    click.option(
        "--resource-version",
        default=None,
        help="Only change the object if it still has this resourceVersion (as shown by status).",
    ),
)


def _thresholds(kw: dict[str, Any]) -> Thresholds:
    return Thresholds(
        min_requests=kw.pop("min_requests"),
        max_error_rate=kw.pop("max_error_rate"),
        max_error_rate_increase=kw.pop("max_error_rate_increase"),
        max_p99=kw.pop("max_p99"),
        max_p99_ratio=kw.pop("max_p99_ratio"),
        p99_slack=kw.pop("p99_slack"),
        fail_on_drift=kw.pop("fail_on_drift"),
        max_accuracy_drop=kw.pop("max_accuracy_drop"),
        min_labelled=kw.pop("min_labelled"),
    )


def _queries(kw: dict[str, Any]) -> QuerySet:
    return QuerySet(
        label=kw.pop("metric_label"),
        metric_prefix=kw.pop("metric_prefix"),
        metric_filter=kw.pop("metric_filter"),
        window=kw.pop("window"),
        drift_query=kw.pop("drift_query"),
    )


@contextmanager
def _gateway(kw: dict[str, Any]) -> Iterator[Gateway]:
    kubeconfig, context, namespace = kw.pop("kubeconfig"), kw.pop("context"), kw.pop("namespace")
    router, local_stack = kw.pop("router"), kw.pop("local_stack")
    if router == "local":
        with connect_local(local_stack) as local:
            yield local
    else:
        with connect(kubeconfig, context, namespace) as gateway:
            yield gateway


@contextmanager
def _router(kw: dict[str, Any]) -> Iterator[IstioRouter]:
    with _gateway(kw) as gateway:
        yield IstioRouter(
            gateway,
            kw.pop("virtual_service"),
            Backend(kw["stable"], kw.pop("stable_host")),
            Backend(kw["canary"], kw.pop("canary_host")),
            route_name=kw.pop("route"),
            patch_type=kw.pop("patch_type"),
        )


# logging ---------------------------------------------------------------------------------------
class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at emit time (works under a CLI runner)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger("rollout")
    for h in list(root.handlers):
        if isinstance(h, _StderrHandler):
            root.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


# the group -------------------------------------------------------------------------------------
class RolloutGroup(click.Group):
    """Turns :class:`RolloutError` into a one-line message on stderr and its typed exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RolloutError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)


@click.group(cls=RolloutGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, envvar="ROLLOUT_VERBOSE", help="Debug logging.")
def cli(verbose: bool) -> None:
    """Canary rollouts of KServe InferenceServices behind an Istio VirtualService.

    \b
    Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 conflict (object changed meanwhile),
    4 not found, 5 VirtualService / request invalid, 6 forbidden, 7 analysis failed (rolled back),
    8 Prometheus unreachable (weights unchanged), 9 Kubernetes API unreachable.
    """
    _configure_logging(verbose)


# status ----------------------------------------------------------------------------------------
def _analysis(prom: Prometheus, queries: QuerySet, stable: str, canary: str) -> tuple[Metrics, Metrics]:
    return collect(prom, stable, queries), collect(prom, canary, queries)


@cli.command()
@kube_options
@side_options
@prometheus_options
@threshold_options
@output_option
def status(output: str, **kw: Any) -> None:
    """Weights, readiness and stable vs canary metrics side by side, with the analysis verdict."""
    thresholds, queries = _thresholds(kw), _queries(kw)
    prometheus_url = kw.pop("prometheus_url")
    with _router(kw) as router:
        routes = router.get_routes()
        ready = {side: readiness(router.gateway, kw[side]) for side in ("stable", "canary")}
    metrics: tuple[Metrics, Metrics] | None = None
    verdict: Verdict | None = None
    prom_error: PrometheusUnavailableError | None = None
    if prometheus_url:
        try:
            with Prometheus(prometheus_url) as prom:
                metrics = _analysis(prom, queries, kw["stable"], kw["canary"])
            verdict = judge(*metrics, thresholds, ready["canary"].ready)
        except PrometheusUnavailableError as e:
            prom_error = e
    state = RunState.from_annotations(routes.annotations)
    last = routes.annotations.get(DECISION_ANNOTATION)
    if output == "json":
        render.echo_json(
            {
                "virtualService": routes.name,
                "namespace": routes.namespace,
                "resourceVersion": routes.resource_version,
                "weights": asdict(routes.weights),
                "hosts": {"stable": routes.stable_host, "canary": routes.canary_host},
                "inferenceServices": {side: asdict(r) for side, r in ready.items()},
                "metrics": None
                if metrics is None
                else {"stable": metrics[0].as_dict(), "canary": metrics[1].as_dict()},
                "verdict": None if verdict is None else verdict.as_dict(),
                "prometheusError": None if prom_error is None else str(prom_error),
                "rollout": None if state is None else asdict(state),
                "lastDecision": json.loads(last) if last else None,
            }
        )
    else:
        con = render.console()
        con.print(
            f"VirtualService {routes.namespace}/{routes.name} (resourceVersion {routes.resource_version})"
        )
        rows: list[tuple[str, str, str]] = [
            ("InferenceService", kw["stable"], kw["canary"]),
            ("destination host", routes.stable_host, routes.canary_host),
            ("weight", f"{routes.weights.stable}%", f"{routes.weights.canary}%"),
            (
                "ready",
                _ready_text(ready["stable"].ready, ready["stable"].message),
                _ready_text(ready["canary"].ready, ready["canary"].message),
            ),
        ]
        con.print(
            render.metrics_table(metrics[0] if metrics else None, metrics[1] if metrics else None, rows)
        )
        if verdict is not None:
            for line in render.verdict_lines(verdict):
                con.print(line)
        if state is not None:
            con.print(
                f"rollout: {state.phase}, step {state.step + 1}/{len(state.steps)} {state.steps}, "
                f"{state.failed_checks} failed checks{', ' + state.reason if state.reason else ''}"
            )
        if last:
            con.print(f"last decision: {last}")
    if prom_error is not None:
        raise prom_error


def _ready_text(ready: bool | None, message: str) -> str:
    return {True: "Ready", False: f"NOT ready ({message})", None: f"unknown ({message})"}[ready]


# writes ----------------------------------------------------------------------------------------
def _change(kw: dict[str, Any], action: str, target: Callable[[Routes], Weights], output: str) -> None:
    dry_run, rv = kw.pop("dry_run"), kw.pop("resource_version")
    with _router(kw) as router:
        routes = router.get_routes()
        weights = target(routes)
        reason = f"{action} by an operator"
        annotations: dict[str, str | None] = {
            DECISION_ANNOTATION: decision(
                action, weights, reason, now_iso(time.time), by=f"rollout {action}"
            ),
        }
        state = RunState.from_annotations(routes.annotations)
        if state is not None and state.phase == "progressing":
            stopped = RunState(**{**asdict(state), "phase": "interrupted", "reason": f"rollout {action}"})
            annotations[STATE_ANNOTATION] = stopped.to_json()
        patch, written = router.set_routes(
            routes, weights, annotations, dry_run=dry_run, expect_resource_version=rv
        )
        kind = "application/json-patch+json" if isinstance(patch, list) else "application/merge-patch+json"
        if dry_run:
            click.echo(
                f"# dry run: PATCH {ISTIO.plural}.{ISTIO.group}/{routes.name} "
                f"in {routes.namespace} ({kind}), not sent",
                err=True,
            )
            click.echo(json.dumps(patch, indent=2, sort_keys=True))
            return
        assert written is not None
        before, after = routes.weights, written.weights
        message = (
            f"{action}: stable {before.stable}% / canary {before.canary}% -> "
            f"stable {after.stable}% / canary {after.canary}%"
        )
        try:
            router.record(written, f"Rollout{action.title().replace('-', '')}", message)
        except RolloutError as e:
            log.warning("could not record an Event (%s); the decision is on the annotation", e)
    if output == "json":
        render.echo_json(
            {
                "virtualService": routes.name,
                "namespace": routes.namespace,
                "before": asdict(before),
                "after": asdict(after),
                "resourceVersion": {"before": routes.resource_version, "after": written.resource_version},
                "patch": patch,
            }
        )
    else:
        click.echo(
            f"VirtualService {routes.namespace}/{routes.name}: {message} "
            f"(resourceVersion {routes.resource_version} -> {written.resource_version})"
        )


@cli.command("set-weight")
@click.argument("weight", type=click.IntRange(0, 100))
@kube_options
@side_options
@write_options
@output_option
def set_weight(weight: int, output: str, **kw: Any) -> None:
    """Send WEIGHT percent (integer 0-100) to the canary, the rest to stable."""
    _change(kw, "set-weight", lambda _: Weights.canary_at(weight), output)


@cli.command()
@kube_options
@side_options
@write_options
@output_option
def promote(output: str, **kw: Any) -> None:
    """All traffic to the canary (100%)."""
    _change(kw, "promote", lambda _: Weights(0, 100), output)


@cli.command()
@kube_options
@side_options
@write_options
@output_option
def rollback(output: str, **kw: Any) -> None:
    """All traffic back to stable (canary 0%)."""
    _change(kw, "rollback", lambda _: Weights(100, 0), output)


# run -------------------------------------------------------------------------------------------
@cli.command()
@kube_options
@side_options
@prometheus_options
@threshold_options
@click.option(
    "--steps",
    envvar="ROLLOUT_STEPS",
    show_envvar=True,
    default="5,10,25,50,100",
    show_default=True,
    help="Canary weights to go through; 100 is appended when missing.",
)
@click.option(
    "--interval",
    envvar="ROLLOUT_INTERVAL",
    show_envvar=True,
    default="1m",
    show_default=True,
    callback=_duration,
    help="Time at each step before its analysis (and between re-checks).",
)
@click.option(
    "--max-failed-checks",
    envvar="ROLLOUT_MAX_FAILED_CHECKS",
    show_envvar=True,
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Failed checks (over the whole rollout) that trigger the rollback.",
)
@click.option(
    "--restart", is_flag=True, help="Ignore a rollout in progress on the VirtualService; start at step 1."
)
def run(steps: str, interval: float, max_failed_checks: int, restart: bool, **kw: Any) -> None:
    """Progressive delivery: step the canary weight up while the analysis passes, roll back when it fails."""
    try:
        step_list = parse_steps(steps)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--steps") from e
    thresholds, queries = _thresholds(kw), _queries(kw)
    prometheus_url = kw.pop("prometheus_url")
    if not prometheus_url:
        raise click.BadParameter("run needs Prometheus", param_hint="--prometheus-url")
    stable, canary = kw["stable"], kw["canary"]
    with _router(kw) as router, Prometheus(prometheus_url) as prom:

        def analyze() -> tuple[Metrics, Metrics, bool | None]:
            s, c = _analysis(prom, queries, stable, canary)
            return s, c, readiness(router.gateway, canary).ready

        def on_check(s: Metrics, c: Metrics, v: Verdict) -> None:
            for line in render.verdict_lines(v):
                log.info("%s", line)

        progressive = Progressive(
            router,
            analyze,
            thresholds,
            RunOptions(step_list, interval, max_failed_checks, restart),
            on_check=on_check,
            preflight=lambda: prom.check(),
        )
        final = progressive.run()
    click.echo(f"rollout {final.phase}: canary at {final.weight}%")


# analyze (no Kubernetes) -----------------------------------------------------------------------
@cli.command()
@side_options
@prometheus_options
@threshold_options
@output_option
@click.option(
    "--exit-code",
    "exit_code",
    is_flag=True,
    help="Exit 7 when the verdict is FAIL (a CI gate); without it the verdict is only printed.",
)
def analyze(output: str, exit_code: bool, **kw: Any) -> None:
    """The analysis `run` would act on, from Prometheus only (no Kubernetes): metrics and verdict.

    Exits 0 whatever the verdict unless --exit-code (then 7 on FAIL); 8 when Prometheus is unreachable.
    """
    thresholds, queries = _thresholds(kw), _queries(kw)
    kw.pop("router"), kw.pop("local_stack")
    url = kw.pop("prometheus_url")
    if not url:
        raise click.BadParameter("analyze needs Prometheus", param_hint="--prometheus-url")
    with Prometheus(url) as prom:
        stable, canary = _analysis(prom, queries, kw["stable"], kw["canary"])
    verdict = judge(stable, canary, thresholds)
    if output == "json":
        render.echo_json(
            {
                "prometheus": url,
                "window": queries.window,
                "metrics": {"stable": stable.as_dict(), "canary": canary.as_dict()},
                "verdict": verdict.as_dict(),
            }
        )
    else:
        con = render.console()
        selector = queries.selector("<name>")
        con.print(f"analysis over the last {queries.window} from {url} (series {{{selector}}})")
        con.print(render.metrics_table(stable, canary, [("InferenceService", kw["stable"], kw["canary"])]))
        for line in render.verdict_lines(verdict):
            con.print(line)
    if exit_code and not verdict.ok:
        raise AnalysisVerdictFailedError(
            f"analysis FAIL for canary {kw['canary']}: "
            + "; ".join(verdict.reasons or ["no passing verdict"])
        )


def main() -> None:
    cli(prog_name="rollout")
