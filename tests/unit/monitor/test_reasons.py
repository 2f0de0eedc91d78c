"""Schema version 2 from the strategies: the reason, indicators and parameters of a signal.

Each series is built so the signal lands on its last bar with values computed by hand in the
comments; the property test then holds every strategy to the contract on random walks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.constants import SCHEMA_VERSION
from common.schema import Signal, parse_signal
from monitor.runner import build_signal
from monitor.sources import Bar
from monitor.strategies import AVAILABLE, Strategy, Trigger, create_strategy
from monitor.strategies.base import format_price
from monitor.strategies.bollinger import BollingerBreakout
from monitor.strategies.macd import MacdCross
from monitor.strategies.rsi import RsiReversal
from monitor.strategies.sma_cross import MaCross


def fired(strategy: Strategy, closes: Sequence[float]) -> list[tuple[int, Trigger]]:
    """(bar index, trigger) for every bar that signals, evaluated bar by bar like the runner."""
    found = []
    for i in range(1, len(closes) + 1):
        trigger = strategy.evaluate(closes[:i])
        if trigger is not None:
            found.append((i - 1, trigger))
    return found


def only_on_last_bar(strategy: Strategy, closes: Sequence[float]) -> Trigger:
    [(bar, trigger)] = fired(strategy, closes)
    assert bar == len(closes) - 1
    return trigger


def test_sma_cross_buy_says_which_averages_crossed_at_what_price() -> None:
    # Flat at 60,000 (both SMAs equal), then 60,112.40:
    # SMA5 = (4 * 60000 + 60112.4) / 5 = 60022.48; SMA20 = (19 * 60000 + 60112.4) / 20 = 60005.62.
    trigger = only_on_last_bar(MaCross(5, 20), [60000.0] * 21 + [60112.4])
    assert trigger.type == "BUY"
    assert trigger.reason == "SMA 5 crossed above SMA 20 at 60,112.40"
    assert trigger.indicators == pytest.approx({"sma_fast": 60022.48, "sma_slow": 60005.62})


def test_sma_cross_sell() -> None:
    # 59,850.50 is 149.5 below: SMA5 = 60000 - 29.9 = 59970.1; SMA20 = 60000 - 7.475 = 59992.525.
    trigger = only_on_last_bar(MaCross(5, 20), [60000.0] * 21 + [59850.5])
    assert trigger.type == "SELL"
    assert trigger.reason == "SMA 5 crossed below SMA 20 at 59,850.50"
    assert trigger.indicators == pytest.approx({"sma_fast": 59970.1, "sma_slow": 59992.525})


def test_ema_cross_names_emas() -> None:
    # Warm-up 3 * 8 + 1 = 25 flat bars at 2,000, then 2,100:
    # EMA3 = 2000 + (2/4) * 100 = 2050; EMA8 = 2000 + (2/9) * 100 = 2022.22...
    trigger = only_on_last_bar(MaCross(3, 8, "ema"), [2000.0] * 25 + [2100.0])
    assert trigger.type == "BUY"
    assert trigger.reason == "EMA 3 crossed above EMA 8 at 2,100.00"
    assert trigger.indicators == pytest.approx({"ema_fast": 2050.0, "ema_slow": 2000 + 200 / 9})


def test_rsi_reasons_name_the_zone_left_and_the_new_value() -> None:
    # Period 2 (warm-up 8): 10,000 .. 17,000 rising by 1,000 -> RSI 100.
    # 11,000 (-6,000): gain (1000 + 0) / 2 = 500, loss 6000 / 2 = 3000 -> RSI 100 - 100 / (7/6)
    # = 14.2857: SELL. 14,000 (+3,000): gain 1750, loss 1500 -> RSI 100 - 600/13 = 53.846: BUY.
    closes = [10000.0 + 1000 * i for i in range(8)] + [11000.0, 14000.0]
    found = fired(RsiReversal(period=2), closes)
    assert [bar for bar, _ in found] == [8, 9]
    (_, sell), (_, buy) = found
    assert sell.type == "SELL"
    assert sell.reason == "RSI 2 fell below 70, out of overbought, to 14.29 at 11,000.00"
    assert sell.indicators == pytest.approx({"rsi": 100 / 7, "rsi_prev": 100.0})
    assert buy.type == "BUY"
    assert buy.reason == "RSI 2 rose above 30, out of oversold, to 53.85 at 14,000.00"
    assert buy.indicators == pytest.approx({"rsi": 700 / 13, "rsi_prev": 100 / 7})


def test_rsi_thresholds_keep_their_decimals() -> None:
    closes = [10000.0 + 1000 * i for i in range(8)] + [11000.0]
    [(_, sell)] = fired(RsiReversal(period=2, overbought=72.5, oversold=27.5), closes)
    assert sell.reason.startswith("RSI 2 fell below 72.5, out of overbought,")


@pytest.mark.parametrize(
    ("last", "side", "word", "sign"), [(1100.0, "BUY", "above", 1), (900.0, "SELL", "below", -1)]
)
def test_macd_cross_reports_line_signal_and_histogram(
    last: float, side: str, word: str, sign: int
) -> None:
    # Warm-up (6 + 2) * 3 + 1 = 25 flat bars at 1,000, then a 100 move:
    # EMA3 moves 50, EMA6 moves 200/7 -> MACD line 150/7; its EMA2 moves 2/3 of it = 100/7;
    # histogram 50/7 (signs flip for the fall).
    trigger = only_on_last_bar(MacdCross(3, 6, 2), [1000.0] * 25 + [last])
    assert trigger.type == side
    assert trigger.reason == f"MACD 3/6 crossed {word} its 2-bar signal line at {last:,.2f}"
    expected = {"macd": 150 / 7, "macd_signal": 100 / 7, "macd_histogram": 50 / 7}
    assert trigger.indicators == pytest.approx({k: sign * v for k, v in expected.items()})


def test_bollinger_buy_quotes_the_band_it_broke() -> None:
    # Period 4, width 1.5. Last window 50000, 50200, 50000, 51000: mean 50,300, deviations
    # -300, -100, -300, 700 -> variance 680000 / 4 = 170000, sd 412.31; upper 50,918.47.
    # The bar before sat inside its bands (50,100 +- 150).
    closes = [50000.0, 50200.0, 50000.0, 50200.0, 50000.0, 51000.0]
    trigger = only_on_last_bar(BollingerBreakout(period=4, width=1.5), closes)
    assert trigger.type == "BUY"
    assert trigger.reason == (
        "Close broke above the upper Bollinger band (4 bars, 1.5 sd: 50,918.47) at 51,000.00"
    )
    sd = math.sqrt(170000)
    assert trigger.indicators == pytest.approx(
        {"bb_upper": 50300 + 1.5 * sd, "bb_middle": 50300.0, "bb_lower": 50300 - 1.5 * sd}
    )


def test_bollinger_sell() -> None:
    # The mirror image: mean 49,900, the same sd, lower band 49,900 - 618.47 = 49,281.53.
    closes = [50200.0, 50000.0, 50200.0, 50000.0, 50200.0, 49200.0]
    trigger = only_on_last_bar(BollingerBreakout(period=4, width=1.5), closes)
    assert trigger.type == "SELL"
    assert trigger.reason == (
        "Close broke below the lower Bollinger band (4 bars, 1.5 sd: 49,281.53) at 49,200.00"
    )
    assert trigger.indicators["bb_lower"] == pytest.approx(49900 - 1.5 * math.sqrt(170000))


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (60112.4, "60,112.40"),
        (1234567.891, "1,234,567.89"),
        (999.999, "1,000.00"),
        (1.0, "1.00"),
        (0.4567, "0.4567"),
        (0.00001234, "0.00001234"),
        (0.0, "0.00"),
    ],
)
def test_prices_read_with_thousands_separators_and_no_zero_for_small_coins(
    price: float, text: str
) -> None:
    assert format_price(price) == text


@pytest.mark.parametrize("name", AVAILABLE)
def test_params_are_the_settable_fields_and_rebuild_the_strategy(name: str) -> None:
    strategy = create_strategy(name, {})
    settable = {f.name for f in dataclasses.fields(strategy)} - {"name", "kind"}  # type: ignore[arg-type]
    assert set(strategy.params) == settable
    assert create_strategy(name, dict(strategy.params)) == strategy


def test_a_signal_out_of_contract_is_refused_before_it_is_published() -> None:
    # An overflowing indicator would otherwise reach the gateway and be dropped as invalid.
    strategy = MaCross(5, 20)
    bar = Bar("BTC-USD", 1700000000.0, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="indicators"):
        build_signal(strategy, Trigger("BUY", {"sma_fast": math.inf}, "x"), bar, "1m")
    with pytest.raises(ValueError, match="reason"):
        build_signal(strategy, Trigger("BUY", {}, "x" * 201), bar, "1m")


# Random walks at every magnitude, from sub-cent coins to 1e9, so every strategy fires often.
walks = st.builds(
    lambda start, steps: [start * math.exp(sum(steps[:i])) for i in range(len(steps))],
    st.floats(min_value=1e-6, max_value=1e9),
    st.lists(st.floats(min_value=-0.08, max_value=0.08), min_size=60, max_size=140),
)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(AVAILABLE), closes=walks)
def test_every_signal_validates_and_quotes_its_own_price(name: str, closes: list[float]) -> None:
    strategy = create_strategy(name, {})
    for index, trigger in fired(strategy, closes):
        bar = Bar("BTC-USD", 1700000000.0 + 60 * index, 1.0, 1.0, 1.0, closes[index])
        signal = build_signal(strategy, trigger, bar, "1m")
        Signal.model_validate(signal)
        # What the gateway does with the bytes the monitor publishes.
        assert parse_signal(orjson.dumps(signal), 64 * 1024) == signal
        assert signal["v"] == SCHEMA_VERSION == 2
        assert signal["params"] == dict(strategy.params)
        price = signal["price"]
        if price >= 1:
            assert f" at {price:,.2f}" in signal["reason"]
        else:
            assert f" at {format_price(price)}" in signal["reason"]
            assert float(format_price(price)) == pytest.approx(price, rel=1e-3)
