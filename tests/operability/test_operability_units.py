"""The pure pieces of ``serving_common.operability``, in process (the real runs are in the other tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from serving_common.operability import (
    ConfigError,
    check_environment,
    effective_settings,
    env_help,
    settings_or_error,
)
from serving_common.operability.logs import REQUEST_ID, configure_logging


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")

    window_size: int = Field(default=200, ge=10)
    """Rows per window."""
    api_token: SecretStr | None = None
    """A secret."""
    sink_url: str | None = None
    """Where to post."""


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"DEMO_WINDOWSIZE": "5"}, "unknown variable DEMO_WINDOWSIZE (did you mean DEMO_WINDOW_SIZE?)"),
        (
            {"DEMO_COLOUR": "red"},
            "unknown variable DEMO_COLOUR; the DEMO_* variables are listed by demo --help",
        ),
        ({"DEMO_HTTP_PORT": "8080"}, "unknown variable DEMO_HTTP_PORT"),  # not a service link: no tcp://
    ],
)
def test_unknown_variables_are_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_environment("DEMO_", [DemoSettings], environ=env, help_hint="demo --help")
    assert str(info.value).startswith(problem), str(info.value)
    assert info.value.exit_code == 2


def test_kubernetes_service_links_are_not_ours() -> None:
    links = {
        "DEMO_SERVICE_HOST": "10.96.0.12",
        "DEMO_SERVICE_PORT": "80",
        "DEMO_SERVICE_PORT_HTTP": "80",
        "DEMO_PORT": "tcp://10.96.0.12:80",
        "DEMO_PORT_80_TCP": "tcp://10.96.0.12:80",
        "DEMO_PORT_80_TCP_PROTO": "tcp",
        "DEMO_PORT_80_TCP_PORT": "80",
        "DEMO_PORT_80_TCP_ADDR": "10.96.0.12",
        "DEMO_PREDICTOR_SERVICE_HOST": "10.96.0.13",  # a Service named demo-predictor
        "DEMO_WINDOW_SIZE": "300",
        "OTHER_THING": "x",
    }
    check_environment("DEMO_", [DemoSettings], environ=links)  # no error


def test_bad_values_name_the_variable_or_flag_and_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_WINDOW_SIZE", "3")
    with pytest.raises(
        ConfigError, match=r"^DEMO_WINDOW_SIZE='3': input should be greater than or equal to 10$"
    ):
        settings_or_error(DemoSettings)
    with pytest.raises(ConfigError, match=r"^--window_size 4: input should be greater than or equal to 10$"):
        settings_or_error(DemoSettings, flags={"window_size": "--window_size"}, window_size=4)
    monkeypatch.delenv("DEMO_WINDOW_SIZE")
    monkeypatch.setenv("DEMO_API_TOKEN", "s3cret")
    monkeypatch.setenv("DEMO_SINK_URL", "https://user:pw@hooks.example.com/x")
    shown = effective_settings(settings_or_error(DemoSettings), port=8080)
    assert shown == {
        "DEMO_WINDOW_SIZE": 200,
        "DEMO_API_TOKEN": "***",
        "DEMO_SINK_URL": "https://user:***@hooks.example.com/x",
        "--port": 8080,
    }


def test_help_lists_variables_with_default_and_meaning() -> None:
    text = env_help([DemoSettings])
    assert "  DEMO_WINDOW_SIZE [200]\n      Rows per window." in text
    assert "  DEMO_API_TOKEN [None]\n      A secret." in text


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name in ("kserve", "uvicorn"):
            logging.getLogger(name).handlers.clear()
        logging.captureWarnings(False)


def test_text_lines_carry_the_request_id(restored_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("demo", "text")
    token = REQUEST_ID.set("req-7")
    try:
        logging.getLogger("kserve").warning("model %s slow", "m")
    finally:
        REQUEST_ID.reset(token)
    logging.getLogger("demo").info("effective settings", extra={"settings": {"DEMO_A": 1, "--b": "x"}})
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(" WARNING kserve: model m slow [request_id=req-7]")
    assert err[1].endswith(" INFO demo: effective settings: DEMO_A=1 --b=x")


def test_report_is_one_line_on_stderr_and_the_termination_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving_common.operability import PortInUseError, exits, report

    termination = tmp_path / "termination-log"
    termination.write_text("")  # Kubernetes creates it; absent elsewhere (then nothing is written)
    monkeypatch.setattr(exits, "TERMINATION_LOG", termination)
    code = report("demo", PortInUseError("--http_port 8080: port already in use\nby another process"))
    assert code == 5
    assert (
        capsys.readouterr().err
        == "demo: error: --http_port 8080: port already in use by another process (exit 5)\n"
    )
    assert termination.read_text() == "--http_port 8080: port already in use by another process (exit 5)\n"
