"""Issue 16 (1): every misconfiguration stops the real ``python -m <component>`` with ONE line
naming the flag or variable, the value and what is expected, and the shared exit code; and every
row of the README's troubleshooting table is one of these cases (and the other way round)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from operability_runs import listening, run
from serving_common.operability import exits
from support import REPO, free_port


@dataclass(frozen=True)
class Case:
    id: str
    component: str
    expect: str
    """The fragment of the one line the README's table shows (no port numbers, no paths)."""
    exit_code: int
    env: dict[str, str] = field(default_factory=dict)
    bundle: str = "good"
    ports: str = "distinct"
    """``distinct``, ``same`` (HTTP = gRPC), ``http-taken``, ``grpc-taken`` (by a SO_REUSEPORT listener)."""
    extra_args: tuple[str, ...] = ()


IN_USE = ": port already in use by another process; expected a free port"
CASES = [
    Case("transformer-grpc-port-in-use", "transformer", IN_USE, exits.EXIT_PORT_IN_USE, ports="grpc-taken"),
    Case("explainer-http-port-in-use", "explainer", IN_USE, exits.EXIT_PORT_IN_USE, ports="http-taken"),
    Case("explainer-grpc-port-in-use", "explainer", IN_USE, exits.EXIT_PORT_IN_USE, ports="grpc-taken"),
    Case(
        "transformer-bad-protocol",
        "transformer",
        "TRANSFORMER_PREDICTOR_PROTOCOL='rest': input should be 'grpc-v2', 'v2' or 'v1'",
        exits.EXIT_CONFIG,
        env={"TRANSFORMER_PREDICTOR_PROTOCOL": "rest"},
    ),
    Case(
        "bad-flag-protocol",
        "transformer",
        "argument --predictor_protocol: invalid choice: 'rest'",
        exits.EXIT_CONFIG,
        extra_args=("--predictor_protocol", "rest"),
    ),
    Case(
        "transformer-no-predictor-host",
        "transformer",
        "--predictor_host '': expected HOST:PORT of the predictor",
        exits.EXIT_CONFIG,
        extra_args=("--predictor_host", ""),
    ),
    Case(
        "explainer-unknown-variable",
        "explainer",
        "unknown variable EXPLAINER_NSAMPLE (did you mean EXPLAINER_NSAMPLES?)",
        exits.EXIT_CONFIG,
        env={"EXPLAINER_NSAMPLE": "64"},
    ),
    Case(
        "transformer-bundle-missing",
        "transformer",
        "is neither a directory nor an .onnx file",
        exits.EXIT_BUNDLE,
        bundle="missing",
    ),
    Case(
        "explainer-bundle-missing",
        "explainer",
        "is neither a directory nor an .onnx file",
        exits.EXIT_BUNDLE,
        bundle="missing",
    ),
    Case(
        "http-port-in-use",
        "predictor",
        ": port already in use by another process; expected a free port",
        exits.EXIT_PORT_IN_USE,
        ports="http-taken",
    ),
    Case(
        "grpc-port-in-use",
        "predictor",
        ": port already in use by another process; expected a free port",
        exits.EXIT_PORT_IN_USE,
        ports="grpc-taken",
    ),
    Case(
        "drift-port-in-use",
        "drift_detector",
        ": port already in use by another process; expected a free port",
        exits.EXIT_PORT_IN_USE,
        ports="http-taken",
    ),
    Case("same-port", "predictor", ": expected a different port for each", exits.EXIT_CONFIG, ports="same"),
    Case(
        "bad-integer",
        "predictor",
        "PREDICTOR_MAX_ROWS='abc': input should be a valid integer",
        exits.EXIT_CONFIG,
        env={"PREDICTOR_MAX_ROWS": "abc"},
    ),
    Case(
        "out-of-range",
        "predictor",
        "PREDICTOR_MAX_ROWS='0': input should be greater than or equal to 1",
        exits.EXIT_CONFIG,
        env={"PREDICTOR_MAX_ROWS": "0"},
    ),
    Case(
        "bad-level",
        "predictor",
        "PREDICTOR_LOG_LEVEL='LOUD': input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        exits.EXIT_CONFIG,
        env={"PREDICTOR_LOG_LEVEL": "LOUD"},
    ),
    Case(
        "bad-boolean",
        "predictor",
        "PREDICTOR_VERIFY_SHA256='maybe': input should be a valid boolean",
        exits.EXIT_CONFIG,
        env={"PREDICTOR_VERIFY_SHA256": "maybe"},
    ),
    Case(
        "unknown-variable",
        "predictor",
        "unknown variable PREDICTOR_MAXROWS (did you mean PREDICTOR_MAX_ROWS?)",
        exits.EXIT_CONFIG,
        env={"PREDICTOR_MAXROWS": "5"},
    ),
    Case(
        "drift-unknown-variable",
        "drift_detector",
        "unknown variable DRIFT_WINDOWSIZE (did you mean DRIFT_WINDOW_SIZE?)",
        exits.EXIT_CONFIG,
        env={"DRIFT_WINDOWSIZE": "5"},
    ),
    Case(
        "drift-inconsistent",
        "drift_detector",
        "window_step must not exceed window_size (DRIFT_WINDOW_STEP=500 > DRIFT_WINDOW_SIZE=200)",
        exits.EXIT_CONFIG,
        env={"DRIFT_WINDOW_MODE": "sliding", "DRIFT_WINDOW_STEP": "500"},
    ),
    Case(
        "bad-flag",
        "predictor",
        "argument --http_port: invalid int value: 'abc'",
        exits.EXIT_CONFIG,
        ports="none",
        extra_args=("--http_port", "abc"),
    ),
    Case(
        "bundle-missing",
        "predictor",
        "is neither a directory nor an .onnx file",
        exits.EXIT_BUNDLE,
        bundle="missing",
    ),
    Case(
        "drift-bundle-missing",
        "drift_detector",
        "is not a directory; expected a model bundle",
        exits.EXIT_BUNDLE,
        bundle="missing",
    ),
    Case(
        "model-unreadable",
        "predictor",
        "onnxruntime cannot load the model",
        exits.EXIT_BUNDLE,
        env={"PREDICTOR_VERIFY_SHA256": "false"},
        bundle="garbage",
    ),
    Case(
        "bare-onnx-unreadable",
        "predictor",
        "onnxruntime cannot load the model",
        exits.EXIT_BUNDLE,
        bundle="bare",
    ),
    Case(
        "sha256-mismatch", "predictor", "but the model card expects", exits.EXIT_INTEGRITY, bundle="tampered"
    ),
]


def _args(case: Case, bundle: Path, http: int, grpc: int) -> list[str]:
    args = ["--model_dir", str(bundle)]
    if case.ports != "none":
        args += ["--http_port", str(http)]
        if case.component != "drift_detector":
            args += ["--grpc_port", str(http if case.ports == "same" else grpc)]
    if case.component in ("transformer", "explainer") and "--predictor_host" not in case.extra_args:
        args += ["--predictor_host", "127.0.0.1:1"]  # never called: the start stops before
    return [*args, *case.extra_args]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_misconfiguration_is_one_line_and_its_exit_code(
    case: Case, gbm_bundle: Path, broken_bundles: dict[str, Path]
) -> None:
    bundle = gbm_bundle if case.bundle == "good" else broken_bundles[case.bundle]
    http, grpc = free_port(), free_port()
    taken = {"http-taken": http, "grpc-taken": grpc}.get(case.ports)
    if taken is not None:
        with listening(taken, reuseport=case.ports == "grpc-taken"):
            result = run(case.component, _args(case, bundle, http, grpc), case.env)
    else:
        result = run(case.component, _args(case, bundle, http, grpc), case.env)
    assert result.code == case.exit_code, result.output
    problem = [line for line in result.output.splitlines() if case.expect in line]
    assert len(problem) == 1, f"expected one line with {case.expect!r}:\n{result.output}"
    if taken is not None:  # the flag and the value are named
        flag = "--grpc_port" if case.ports == "grpc-taken" else "--http_port"
        assert f"{flag} {taken}: port already in use" in problem[0]
    if case.bundle != "good":
        assert str(broken_bundles[case.bundle]) in problem[0]
    assert "Traceback" not in result.output, result.output
    if not case.id.startswith("bad-flag"):  # argparse prints its usage first; ours end on the one line
        assert case.expect in result.output.strip().splitlines()[-1]
        assert f"(exit {case.exit_code})" in problem[0]


def _readme_rows() -> list[tuple[str, str, int]]:
    """(misconfiguration, one line, exit) of the README's troubleshooting table."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[3].isdigit():
            message = re.findall(r"`([^`]+)`", cells[2])
            assert message, f"README row without a `message`: {line}"
            rows.append((cells[0], message[0], int(cells[3])))
    return rows


def test_readme_table_is_exactly_the_tested_cases() -> None:
    rows = _readme_rows()
    assert len(rows) >= 10
    matched: set[str] = set()
    for what, message, code in rows:
        cases = [c for c in CASES if c.expect in message and c.exit_code == code]
        assert cases, f"README row {what!r} ({message!r}, exit {code}) is not a tested case"
        matched.update(c.id for c in cases)
    assert matched == {c.id for c in CASES}, (
        f"cases missing from the README: {set(c.id for c in CASES) - matched}"
    )


def test_exit_codes_are_documented_in_the_readme() -> None:
    text = (REPO / "README.md").read_text()
    section = text.split("## Troubleshooting", 1)[1]
    for name in ("EXIT_CONFIG", "EXIT_BUNDLE", "EXIT_INTEGRITY", "EXIT_PORT_IN_USE", "EXIT_UPSTREAM"):
        code = getattr(exits, name)
        assert re.search(rf"\| {code} \| `{name}`", section), f"{name} ({code}) not in the exit code table"
