"""Reading bars for a backtest (replay CSV, Binance klines) and the runner's signals over them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest

from common.schema import Signal, signal_id
from monitor.backtest.data import DataError, detect_format, load_file
from monitor.backtest.signals import KeptSignals, run_strategies
from monitor.settings import SAMPLE_REPLAY_FILE
from monitor.strategies import Trigger, build_strategy_book

HOUR_MS = 3_600_000
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC, in ms


def kline(i: int, close: float, unit: int = 1) -> str:
    """One Binance kline row; ``unit`` 1000 for the microsecond files (spot, 2025 on)."""
    opened = (T0 + i * HOUR_MS) * unit
    high, low = close + 5, close - 5
    return (
        f"{opened},{close:.8f},{high:.8f},{low:.8f},{close:.8f},1.5,{opened + HOUR_MS * unit - 1},"
        f"{1.5 * close:.8f},42,0.7,{0.7 * close:.8f},0"
    )


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("unit", [1, 1000], ids=["ms", "us"])
def test_binance_klines_become_bars_closing_at_the_bar_end(tmp_path: Path, unit: int) -> None:
    path = write(tmp_path, "BTCUSDT-1h-2024-03.csv", [kline(i, 100.0 + i, unit) for i in range(3)])
    assert detect_format(path) == "binance"
    bars = load_file(path, lambda *_: None)
    assert list(bars) == ["BTCUSDT"]
    assert [b.ts for b in bars["BTCUSDT"]] == [(T0 + (i + 1) * HOUR_MS) / 1000 for i in range(3)]
    assert [b.close for b in bars["BTCUSDT"]] == [100.0, 101.0, 102.0]


def test_binance_header_and_bad_rows(tmp_path: Path) -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    header += "taker_buy_volume,taker_buy_quote_volume,ignore"
    broken = kline(1, 100.0).replace("105.00000000", "95.50000000", 1)  # high below close
    lines = [header, kline(0, 100.0), broken, kline(0, 100.0), "1,2,3", kline(2, 101.0)]
    path = write(tmp_path, "ETHUSDT-1h-2024-03.csv", lines)
    reported: list[tuple[str, str]] = []
    bars = load_file(path, lambda symbol, reason: reported.append((symbol, reason)))
    assert [b.close for b in bars["ETHUSDT"]] == [100.0, 101.0]
    # The bracket check, the order check and the column count, each reported once.
    assert reported == [("ETHUSDT", "bad_row")] * 3


def test_the_replay_format_is_read_by_the_replay_source() -> None:
    assert detect_format(SAMPLE_REPLAY_FILE) == "replay"
    bars = load_file(SAMPLE_REPLAY_FILE, lambda *_: None)
    assert sorted(bars) == ["ADA-USD", "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]
    assert {len(v) for v in bars.values()} == {200}


def test_unreadable_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "missing.csv", lambda *_: None)
    with pytest.raises(DataError, match="not a replay CSV"):
        load_file(write(tmp_path, "x.csv", ["a,b,c", "1,2,3"]), lambda *_: None)


def test_signals_are_the_runners_contract_checked_signals_one_per_id() -> None:
    bars = load_file(SAMPLE_REPLAY_FILE, lambda *_: None)
    book = build_strategy_book(["BTC-USD"], ["sma_cross", "rsi"], {}, {})
    found = run_strategies({"BTC-USD": bars["BTC-USD"]}, book).signals
    crosses = found[("BTC-USD", "sma_cross")]
    assert len(crosses) > 5
    for s in crosses:
        Signal.model_validate(s)
        assert s["id"] == signal_id("BTC-USD", "sma_cross", s["bar_ts"])
        assert s["price"] == next(b.close for b in bars["BTC-USD"] if b.ts == s["bar_ts"])
    # The first evaluation needs warmup_bars closes: no signal before the 21st bar.
    assert crosses[0]["bar_ts"] >= bars["BTC-USD"][20].ts
    # States alternate: a crossing strategy never says the same side twice in a row.
    assert all(a["type"] != b["type"] for a, b in itertools.pairwise(crosses))


def test_kept_signals_refuse_a_seen_id_as_the_publish_script_does() -> None:
    kept = KeptSignals()
    kept.submit({"id": "X:s:1"})
    kept.submit({"id": "X:s:1"})
    assert len(kept.signals) == 1 and kept.duplicates == 1


class Flaky:
    """A strategy that raises on every tenth bar and signals BUY on every other bar."""

    name = "flaky"
    params: dict[str, float] = {}
    warmup_bars = 1

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, closes: Sequence[float]) -> Trigger | None:
        self.calls += 1
        if self.calls % 10 == 0:
            raise ZeroDivisionError("odd data")
        return Trigger("BUY", {}, "because") if self.calls % 2 else None


def test_a_strategy_that_raises_is_counted_and_the_others_go_on() -> None:
    bars = load_file(SAMPLE_REPLAY_FILE, lambda *_: None)["ETH-USD"][:80]
    book = {
        "ETH-USD": [Flaky(), *build_strategy_book(["ETH-USD"], ["sma_cross"], {}, {})["ETH-USD"]]
    }
    found = run_strategies({"ETH-USD": bars}, book)  # type: ignore[dict-item]
    assert found.errors == {"flaky": 8, "sma_cross": 0}
    assert len(found.signals[("ETH-USD", "flaky")]) == 40  # the odd calls
    assert found.signals[("ETH-USD", "sma_cross")]  # the other strategy went on
