"""Settings load from the environment and fail at start-up with one clear line."""

from __future__ import annotations

import pytest

from common.settings import load_settings
from gateway.settings import GatewaySettings
from tests.support.settings import startup_error


def test_defaults_and_lists_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSPORTS", "websocket")
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    settings = load_settings(GatewaySettings, [])
    assert settings.transports == ["websocket"]
    assert settings.cors_allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.signal_channel == "quantum_signals"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "eighty"}, "configuration error: PORT:"),
        ({"REDIS_URL": "http://x"}, "configuration error: REDIS_URL:"),
        ({"TRANSPORTS": "carrier-pigeon"}, "configuration error: TRANSPORTS:"),
        ({"ADMIN_TOKEN": "changeme"}, "ADMIN_TOKEN is a placeholder"),
        ({"REDIS_BACKOFF_MAX_S": "60"}, "configuration error: REDIS_BACKOFF_MAX_S:"),
    ],
)
def test_bad_setting_exits_with_a_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    assert expected in startup_error(monkeypatch, capsys, GatewaySettings, env)


def test_secret_values_are_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "short-secret")
    with pytest.raises(SystemExit):
        load_settings(GatewaySettings, [])
    assert "short-secret" not in capsys.readouterr().err


def test_placeholder_token_allowed_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "changeme")
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert load_settings(GatewaySettings, []).admin_token is not None


def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_settings(GatewaySettings, ["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in GatewaySettings.model_fields:
        assert name.upper() in out
