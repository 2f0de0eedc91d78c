"""Every setting error names the environment variable(s) at fault, also the errors of
checks across several settings (whose pydantic error has no location)."""

from __future__ import annotations

import pytest

from common.settings import ServiceSettings
from gateway.settings import GatewaySettings
from monitor.settings import MonitorSettings
from tests.support.settings import startup_error


@pytest.mark.parametrize(
    ("cls", "env", "named"),
    [
        (MonitorSettings, {"STRATEGIES": "foo"}, ["STRATEGIES"]),
        (MonitorSettings, {"STRATEGY_PARAMS": '{"sma_cross": {"fast": 30}}'}, ["STRATEGY_PARAMS"]),
        (
            MonitorSettings,
            {"STRATEGIES": "rsi", "STRATEGY_PARAMS": '{"rsi": {"period": 0}}'},
            ["STRATEGIES", "STRATEGY_PARAMS"],
        ),
        (MonitorSettings, {"SYMBOL_PARAMS": '{"ZZZ": {"sma_cross": {}}}'}, ["SYMBOL_PARAMS"]),
        (MonitorSettings, {"SOURCE": "replay", "REPLAY_FILE": "/nonexistent"}, ["REPLAY_FILE"]),
        (
            ServiceSettings,
            {"REDIS_URL": "redis://u:p@h/0", "REDIS_PASSWORD": "x"},
            ["REDIS_URL", "REDIS_PASSWORD"],
        ),
        (
            ServiceSettings,
            {"REDIS_SENTINEL_PASSWORD": "x"},
            ["REDIS_SENTINEL_PASSWORD", "REDIS_URL"],
        ),
        (GatewaySettings, {"TRANSPORTS": ","}, ["TRANSPORTS"]),
        (GatewaySettings, {"ADMIN_TOKEN": "changeme"}, ["ADMIN_TOKEN", "ENVIRONMENT"]),
        (GatewaySettings, {"JWT_ALGORITHMS": "HS256,RS256"}, ["JWT_ALGORITHMS"]),
        (GatewaySettings, {"AUTH_REQUIRED": "true"}, ["AUTH_REQUIRED", "JWT_SECRET"]),
    ],
)
def test_checks_across_settings_name_their_variables(
    cls: type[ServiceSettings],
    env: dict[str, str],
    named: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = startup_error(monkeypatch, capsys, cls, env).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"configuration error: {', '.join(named)}: "), lines[0]
