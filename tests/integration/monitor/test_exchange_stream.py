"""The streaming exchange source: the real ccxt.pro client against a local Binance kline stream
(WebSocket) and the recorded Binance REST API, both on 127.0.0.1.

The REST fake here shows a fixed number of recorded candles (``shown``), which a test raises to
make bars "close" on REST; the stream fake sends what a test tells it to. So each test knows
which path a bar could have come by.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.metrics import MonitorMetrics
from monitor.sources.base import Bar
from monitor.sources.exchange_stream import StreamingExchangeSource
from tests.integration.monitor.fake_binance_ws import FakeBinanceStream, kline_event
from tests.integration.monitor.fake_exchange import FIRST_VISIBLE, FakeBinance

SYMBOL, MARKET, STREAM = "BTC/USDT", "BTCUSDT", "btcusdt@kline_1m"
MINUTE_MS = 60_000
M = "qs_monitor_exchange_stream"


class ShownBinance(FakeBinance):
    """REST that shows ``shown`` candles per symbol and no more, however often it is asked."""

    def klines_response(self, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            shown = self.klines[query["symbol"]][: self.visible[query["symbol"]]]
        limit = int(query.get("limit", 500))
        if "startTime" in query:
            return 200, [k for k in shown if k[0] >= int(query["startTime"])][:limit]
        return 200, shown[-limit:]

    def show(self, count: int) -> None:
        with self._lock:
            self.visible[MARKET] = count


class Run:
    """A source following SYMBOL in a task, collecting its bars."""

    def __init__(self, rest: ShownBinance, ws: FakeBinanceStream, **kwargs: Any) -> None:
        self.rest, self.ws = rest, ws
        self.registry = CollectorRegistry()
        self.source = StreamingExchangeSource(
            exchange_id="binance",
            timeframe="1m",
            poll_interval_s=kwargs.pop("poll_s", 60.0),
            timeout_s=5,
            stale_s=kwargs.pop("stale_s", 30.0),
            url=rest.url,
            stream_url=ws.url,
            options={"fetchMarkets": {"types": ["spot"]}},
            metrics=MonitorMetrics(self.registry, "exchange"),
            backoff_max_s=0.5,
        )
        self.bars: list[Bar] = []
        self.task: asyncio.Task[None] | None = None

    def row(self, index: int) -> list[Any]:
        return self.rest.klines[MARKET][index]

    def close_ts(self, index: int) -> float:
        return float(self.row(index)[0] + MINUTE_MS) / 1000

    async def start(self) -> None:
        history = await self.source.history(SYMBOL, 5)
        assert history[-1].ts == self.close_ts(FIRST_VISIBLE - 1)
        self.task = asyncio.create_task(self._follow(history[-1]))
        await self.ws.wait_subscribes(1)

    async def _follow(self, last: Bar) -> None:
        async for bar in self.source.stream(SYMBOL, last):
            self.bars.append(bar)

    async def send(self, index: int, closed: bool = True) -> None:
        await self.ws.kline(MARKET, "1m", self.row(index), closed)

    def klines_requests(self) -> int:
        return sum(1 for _, path in self.rest.requests if path == "/api/v3/klines")

    def fallbacks(self, reason: str) -> float:
        return self.metric(f"{M}_fallbacks_total", symbol=SYMBOL, reason=reason)

    def dropped(self, reason: str) -> float:
        return self.metric(f"{M}_dropped_total", symbol=SYMBOL, reason=reason)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert self.task is not None and not self.task.done(), self.task
            assert time.monotonic() < deadline, f"timed out; bars: {self.indices()}"
            await asyncio.sleep(0.01)

    async def until_bars(self, count: int) -> None:
        await self.until(lambda: len(self.bars) >= count)

    def indices(self) -> list[int]:
        opens = [r[0] for r in self.rest.klines[MARKET]]
        return [opens.index(round(b.ts * 1000) - MINUTE_MS) for b in self.bars]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.source.aclose()


@pytest.fixture
async def run_factory() -> AsyncIterator[Callable[..., Any]]:
    runs: list[Run] = []
    rest = ShownBinance()
    with rest:
        async with FakeBinanceStream() as ws:

            async def make(**kwargs: Any) -> Run:
                run = Run(rest, ws, **kwargs)
                runs.append(run)
                await run.start()
                return run

            yield make
            for run in runs:
                await run.stop()


async def test_closed_bars_come_once_in_order_and_forming_candles_are_not_bars(
    run_factory: Callable[..., Any],
) -> None:
    run: Run = await run_factory()
    for i in range(FIRST_VISIBLE, FIRST_VISIBLE + 5):
        await run.send(i, closed=False)
        await run.send(i, closed=False)
        await run.send(i, closed=True)
    await run.until_bars(5)
    await asyncio.sleep(0.2)
    assert run.indices() == list(range(FIRST_VISIBLE, FIRST_VISIBLE + 5))
    last = run.bars[-1]
    row = run.row(FIRST_VISIBLE + 4)
    assert (last.ts, last.open, last.high, last.low, last.close, last.volume) == (
        run.close_ts(FIRST_VISIBLE + 4),
        *(float(x) for x in row[1:6]),
    )
    # REST never showed these bars: they came by the stream.
    assert run.metric(f"{M}_active", symbol=SYMBOL) == 1
    assert run.dropped("duplicate") == run.dropped("out_of_order") == 0
    assert run.fallbacks("stale") == run.fallbacks("error") == 0


async def test_a_reconnect_fills_the_gap_from_rest_without_skipping_or_doubling(
    run_factory: Callable[..., Any],
) -> None:
    run: Run = await run_factory()  # polls every 60 s: the gap can only be filled at hand-back
    first = FIRST_VISIBLE
    for i in (first, first + 1):
        await run.send(i)
    await run.until_bars(2)
    polls = run.klines_requests()
    await run.ws.drop_connections()
    # Polling takes over at once, with one request (REST has nothing new yet) ...
    await run.until(lambda: run.fallbacks("error") == 1 and run.klines_requests() > polls)
    await asyncio.sleep(0.2)  # ... whose answer is in
    assert run.metric(f"{M}_active", symbol=SYMBOL) == 0
    # Bars first+2 .. first+5 closed while the stream was away: REST has them now.
    run.rest.show(first + 6)
    await run.ws.wait_subscribes(2)  # ccxt dialled again and resubscribed
    await run.send(first + 5)  # the exchange resends the last closed candle: a duplicate
    await run.send(first + 6, closed=False)
    await run.send(first + 6)
    await run.until_bars(7)
    await asyncio.sleep(0.2)
    assert run.indices() == list(range(first, first + 7))
    assert run.metric(f"{M}_gap_bars_total", symbol=SYMBOL) == 4
    assert run.dropped("duplicate") == 1  # first+5 came by REST first, then by the stream
    assert run.metric(f"{M}_handbacks_total", symbol=SYMBOL) == 1
    assert run.metric(f"{M}_reconnects_total", symbol=SYMBOL) >= 1
    assert run.metric(f"{M}_active", symbol=SYMBOL) == 1


async def test_a_stale_stream_hands_over_to_polling_and_takes_back(
    run_factory: Callable[..., Any],
) -> None:
    run: Run = await run_factory(stale_s=0.5, poll_s=0.05)
    first = FIRST_VISIBLE
    await run.send(first)
    await run.until_bars(1)
    # The stream goes quiet (the socket stays open); REST keeps closing bars.
    run.rest.show(first + 3)
    await run.until_bars(3)
    assert run.metric(f"{M}_fallbacks_total", symbol=SYMBOL, reason="stale") == 1
    assert run.metric(f"{M}_active", symbol=SYMBOL) == 0
    # The quiet connection was dropped and dialled again.
    await run.ws.wait_subscribes(2)
    await run.send(first + 3)  # REST does not show this one: only the stream can bring it
    await run.until_bars(4)
    assert run.indices() == [first, first + 1, first + 2, first + 3]
    assert run.metric(f"{M}_active", symbol=SYMBOL) == 1
    assert run.metric(f"{M}_handbacks_total", symbol=SYMBOL) == 1
    # Streaming again: polling stopped asking for klines.
    before = run.klines_requests()
    await asyncio.sleep(0.3)
    assert run.klines_requests() == before


async def test_duplicate_and_out_of_order_klines_are_dropped_and_counted(
    run_factory: Callable[..., Any],
) -> None:
    run: Run = await run_factory()
    first = FIRST_VISIBLE
    await run.send(first)
    await run.until_bars(1)
    run.rest.show(first + 3)  # REST has first+2, which the stream will skip
    for i in (first + 1, first + 1, first, first + 3, first + 2, first + 4):
        await run.send(i)
    await run.until_bars(5)
    await asyncio.sleep(0.2)
    assert run.indices() == list(range(first, first + 5))
    assert (run.dropped("duplicate"), run.dropped("out_of_order")) == (1, 2)
    assert run.metric(f"{M}_gap_bars_total", symbol=SYMBOL) == 1
    assert run.metric(f"{M}_fallbacks_total", symbol=SYMBOL, reason="error") == 0


async def test_malformed_messages_are_counted_and_the_stream_carries_on(
    run_factory: Callable[..., Any],
) -> None:
    run: Run = await run_factory()
    good = run.ws
    bad_kline = kline_event(MARKET, "1m", run.row(FIRST_VISIBLE), closed=True)
    await good.send(STREAM, "{not json")
    await good.send(STREAM, "plain text")
    await good.send(STREAM, "[1, 2]")
    await good.send(STREAM, {"e": "kline", "E": 1, "s": MARKET})
    await good.send(STREAM, {**bad_kline, "k": {**bad_kline["k"], "x": "yes"}})
    await good.send(STREAM, {**bad_kline, "k": {**bad_kline["k"], "h": "1", "l": "2"}})
    await run.send(FIRST_VISIBLE)
    await run.send(FIRST_VISIBLE + 1)
    await run.until_bars(2)
    assert run.indices() == [FIRST_VISIBLE, FIRST_VISIBLE + 1]
    malformed = {
        reason: run.metric(f"{M}_malformed_total", reason=reason)
        for reason in ("bad_json", "not_an_object", "bad_kline")
    }
    assert malformed == {"bad_json": 1, "not_an_object": 2, "bad_kline": 3}
    # The connection survived: no reconnect, no fallback.
    assert run.metric(f"{M}_reconnects_total", symbol=SYMBOL) == 0
    assert good.subscribes == 1
