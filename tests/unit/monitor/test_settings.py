"""Configuration: per-strategy and per-symbol parameters, and start-up failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import settings_help
from monitor.settings import MonitorSettings
from monitor.strategies import build_strategy_book
from monitor.strategies.rsi import RsiReversal
from monitor.strategies.sma_cross import MaCross
from tests.support.settings import startup_error


def test_parameters_apply_per_strategy_then_per_symbol() -> None:
    book = build_strategy_book(
        ["A", "B"],
        ["sma_cross", "rsi"],
        {"rsi": {"period": 10}},
        {"B": {"rsi": {"overbought": 80}, "sma_cross": {"fast": 3, "slow": 9}}},
    )
    assert book["A"] == [MaCross(5, 20), RsiReversal(period=10)]
    assert book["B"] == [MaCross(3, 9), RsiReversal(period=10, overbought=80)]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STRATEGIES": "sma_cross,nope"}, "unknown strategy 'nope'"),
        ({"STRATEGY_PARAMS": '{"sma_cross": {"fast": 30}}'}, "needs 1 <= fast < slow"),
        ({"STRATEGY_PARAMS": '{"sma_cross": {"fats": 3}}'}, "unknown parameters ['fats']"),
        ({"SYMBOL_PARAMS": '{"ZZZ": {"sma_cross": {"fast": 3}}}'}, "not in SYMBOLS"),
        ({"STRATEGY_PARAMS": '{"rsi": {"period": 3}}'}, "not in STRATEGIES"),
        ({"SOURCE": "carrier-pigeon"}, "SOURCE"),
        ({"LEASE_TTL_S": "0"}, "LEASE_TTL_S"),
        ({"SOURCE": "replay", "REPLAY_FILE": "/nonexistent.csv"}, "REPLAY_FILE"),
    ],
)
def test_bad_configuration_fails_with_one_clear_line(
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = startup_error(monkeypatch, capsys, MonitorSettings, env).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error:")
    assert message in lines[0]


def test_help_lists_every_setting() -> None:
    text = settings_help(MonitorSettings)
    for name in MonitorSettings.model_fields:
        assert name.upper() in text
    assert "PORT" in text and "default: 8001" in text


def test_docs_describe_every_monitor_setting() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "monitor.md").read_text()
    missing = [n.upper() for n in MonitorSettings.model_fields if f"`{n.upper()}`" not in docs]
    assert missing == []
