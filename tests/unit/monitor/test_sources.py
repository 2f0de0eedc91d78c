"""The sim and replay sources, and the exchange URL override, without a network."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from pathlib import Path

import pytest

from monitor.settings import SAMPLE_REPLAY_FILE
from monitor.sources.base import Bar, format_timeframe
from monitor.sources.exchange import override_urls
from monitor.sources.replay import ReplaySource, load_bars
from monitor.sources.sim import SimulatedMarket

HEADER = "timestamp,symbol,open,high,low,close,volume\n"


async def take(
    source: SimulatedMarket | ReplaySource, symbol: str, last: Bar | None, n: int
) -> list[Bar]:
    out = []
    async for bar in source.stream(symbol, last):
        out.append(bar)
        if len(out) == n:
            break
    return out


async def test_sim_bars_sit_on_the_grid_and_continue_deterministically() -> None:
    market = SimulatedMarket(tick_interval_s=0.01, seed=7)
    first = await take(market, "AAA", None, 3)
    steps = [round(b.ts / 0.01, 6) for b in first]
    assert all(s == int(s) for s in steps)
    # One bar per step unless the machine stalled (then it skips ahead, never bursts).
    assert steps == sorted(set(steps))
    assert all(a.close == b.open for a, b in itertools.pairwise(first))
    # Two replicas continuing from the same bar compute the same next bar.
    again = SimulatedMarket(tick_interval_s=0.01, seed=7)
    index = round(first[-1].ts / 0.01) + 5
    assert market.bar("AAA", index, first[-1].close) == again.bar("AAA", index, first[-1].close)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in first)


async def test_sim_history_ends_now_and_is_continuous() -> None:
    history = await SimulatedMarket(tick_interval_s=1.0).history("BTC-USD", 30)
    assert len(history) == 30
    assert all(a.close == b.open for a, b in itertools.pairwise(history))


def test_replay_reports_bad_rows_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        HEADER
        + "1000,AAA,1,2,0.5,1.5,10\n"  # line 2: good
        + "oops,AAA,1,2,0.5,1.5,10\n"  # line 3: bad timestamp
        + "1060,AAA,1,2,0.5,-1.5,10\n"  # line 4: negative price
        + "1030,AAA,1,2,0.5,1.5,10\n"  # line 5: good
        + "1020,AAA,1,2,0.5,1.5,10\n"  # line 6: out of order
        + "1040,BBB,1,x,0.5,1.5,10\n"  # line 7: unparsable
        + "2024-03-01T00:00:00Z,BBB,1,2,0.5,1.5,\n"
    )  # line 8: good, empty volume
    reported: list[tuple[str, str]] = []
    bars = load_bars(path, lambda symbol, reason: reported.append((symbol, reason)))
    assert [b.ts for b in bars["AAA"]] == [1000.0, 1030.0]
    assert [(b.ts, b.volume) for b in bars["BBB"]] == [(1709251200.0, 0.0)]
    assert reported == [("AAA", "bad_row")] * 3 + [("BBB", "bad_row")]
    logged = capsys.readouterr()
    for line in (3, 4, 6, 7):
        assert f"{path}:{line}" in logged.out + logged.err


async def test_replay_resumes_after_the_last_bar_and_honours_speed(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + "".join(f"{1000 + i},AAA,1,2,0.5,1.5,1\n" for i in range(5)))
    fast = ReplaySource(path, speed=50.0, report=lambda s, r: None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    bars = await take(fast, "AAA", None, 5)
    elapsed = loop.time() - started
    assert [b.ts for b in bars] == [1000, 1001, 1002, 1003, 1004]
    assert 4 / 50 * 0.8 <= elapsed < 1.0  # 4 gaps of 1 s at 50x
    instant = ReplaySource(path, speed=0, report=lambda s, r: None)
    assert [b.ts for b in await take(instant, "AAA", bars[2], 5)] == [1003, 1004]


def test_the_shipped_sample_file_is_clean() -> None:
    reported: list[tuple[str, str]] = []
    bars = load_bars(SAMPLE_REPLAY_FILE, lambda s, r: reported.append((s, r)))
    assert reported == []
    assert len(bars) == 5 and all(len(b) == 200 for b in bars.values())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "500ms"),
        (0.1, "100ms"),  # 100.00000000000001 ms in binary
        (0.02, "20ms"),
        (1, "1s"),
        (1.5, "1500ms"),
        (90, "90s"),
        (60, "1m"),
        (300, "5m"),
        (14_400, "4h"),
        (86_400, "1d"),
        (604_800, "1w"),
        (2_592_000, "30d"),  # ccxt's "1M"
        (0.0004, None),
        (0.0015, None),
        (0, None),
        (-60, None),
        (None, None),
    ],
)
def test_timeframes_have_one_spelling(seconds: float | None, text: str | None) -> None:
    assert format_timeframe(seconds) == text


def test_each_source_knows_its_timeframe(tmp_path: Path) -> None:
    assert SimulatedMarket(tick_interval_s=0.5).timeframe_s("BTC-USD") == 0.5
    sample = ReplaySource(SAMPLE_REPLAY_FILE, speed=0, report=lambda s, r: None)
    assert format_timeframe(sample.timeframe_s("BTC-USD")) == "1m"
    # A file with a gap and one odd bar: the usual interval wins; one bar has none.
    path = tmp_path / "bars.csv"
    times = [0, 300, 600, 900, 2700, 3000, 3001]
    rows = [f"{1_700_000_000 + t},AAA,1,2,0.5,1.5,1\n" for t in times]
    path.write_text(HEADER + "".join(rows) + "1700000000,BBB,1,2,0.5,1.5,1\n")
    replay = ReplaySource(path, speed=0, report=lambda s, r: None)
    assert format_timeframe(replay.timeframe_s("AAA")) == "5m"
    assert replay.timeframe_s("BBB") is None
    assert replay.timeframe_s("ZZZ") is None


def test_override_urls_rehomes_every_api_url() -> None:
    urls = {
        "public": "https://api.binance.com/api/v3",
        "nested": {"x": "https://x.com/a?b=1"},
        "n": 3,
    }
    assert override_urls(urls, "http://127.0.0.1:9999") == {
        "public": "http://127.0.0.1:9999/api/v3",
        "nested": {"x": "http://127.0.0.1:9999/a?b=1"},
        "n": 3,
    }


def test_sim_shocks_are_standard_normal_and_uniform_and_fixed_by_symbol_and_index() -> None:
    market = SimulatedMarket(seed=42)
    shocks = [market._shocks("BTC-USD", i) for i in range(20_000)]
    for column in (0, 1):
        values = [s[column] for s in shocks]
        assert abs(statistics.fmean(values)) < 0.03
        assert abs(statistics.pstdev(values) - 1) < 0.03
    uniforms = [s[2] for s in shocks]
    assert min(uniforms) >= 0 and max(uniforms) < 1
    assert abs(statistics.fmean(uniforms) - 0.5) < 0.01
    assert market._shocks("BTC-USD", 7) == SimulatedMarket(seed=42)._shocks("BTC-USD", 7)
    assert market._shocks("BTC-USD", 7) != market._shocks("ETH-USD", 7)
    assert market._shocks("BTC-USD", 7) != SimulatedMarket(seed=43)._shocks("BTC-USD", 7)
