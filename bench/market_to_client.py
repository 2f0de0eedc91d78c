"""Market event to client: a candle closes at the "exchange", its signal reaches a Socket.IO client.

    .venv/bin/python bench/market_to_client.py [--symbols 10] [--seconds 60] [--polls 10,1]

Runs a synthetic Binance on 127.0.0.1 in this process (the REST API and the WebSocket kline
stream, 1-second candles whose closes swing so that sma_cross 2/4 fires about every third bar),
a real redis-server, a real gateway and, one after the other, a real monitor process
(``python -m monitor``, SOURCE=exchange) streaming and then polling at each interval of
``--polls``. The latency of a signal is its arrival at a python-socketio client minus the
exchange's event time of its candle: for the stream, the ``E`` of the closing kline event the
server sent; for polling (which sees no event), the candle's close time, which is when the
server sends that event. Signals of the first ``--settle`` seconds after a monitor is ready are
left out (warm-up, first connection). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL
from tests.integration.monitor.fake_binance_ws import FakeBinanceStream, kline_event
from tests.support.clients import RecordingClient
from tests.support.redis_server import ProcessRedis
from tests.support.services import ServiceProcess

RECORDED = Path(__file__).resolve().parents[1] / "tests/integration/monitor/recorded"
BAR_MS = 1000
PERIOD_BARS = 6  # one sine period of the synthetic closes


def row(index: int, open_ms: int) -> list[Any]:
    """Synthetic 1 s kline of symbol ``index``, the same for REST and the stream."""

    def price(n: int) -> float:
        return 100 + 5 * math.sin(2 * math.pi * (n + index) / PERIOD_BARS)

    n = open_ms // BAR_MS
    o, c = price(n - 1), price(n)
    h, low = max(o, c) + 0.1, min(o, c) - 0.1
    t, close_t = open_ms, open_ms + BAR_MS - 1
    return [
        t,
        f"{o:.4f}",
        f"{h:.4f}",
        f"{low:.4f}",
        f"{c:.4f}",
        "1.0",
        close_t,
        "100",
        10,
        "0.5",
        "50",
        "0",
    ]


class SyntheticRest:
    """Binance's exchangeInfo and klines (interval 1s) for the synthetic symbols."""

    def __init__(self, markets: list[str]) -> None:
        info = json.loads((RECORDED / "binance_exchange_info.json").read_text())
        template = info["symbols"][0]
        info["symbols"] = [
            {**template, "symbol": m, "baseAsset": m.removesuffix("USDT")} for m in markets
        ]
        self.info = json.dumps(info).encode()
        self.index = {m: i for i, m in enumerate(markets)}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def klines(self, query: dict[str, str]) -> bytes:
        limit = min(int(query.get("limit", 500)), 1000)
        now_open = int(time.time() * 1000) // BAR_MS * BAR_MS  # the forming candle
        start = int(query.get("startTime", now_open - (limit - 1) * BAR_MS))
        start = (start + BAR_MS - 1) // BAR_MS * BAR_MS
        opens = range(start, min(now_open, start + (limit - 1) * BAR_MS) + 1, BAR_MS)
        return json.dumps([row(self.index[query["symbol"]], t) for t in opens]).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        rest = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = rest.info if parts.path == "/api/v3/exchangeInfo" else rest.klines(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


class Market:
    """The stream side: at every second, each subscribed symbol's closing kline event, and a
    forming update half-way; remembers each closing event's ``E``."""

    def __init__(self, stream: FakeBinanceStream, markets: list[str]) -> None:
        self.stream = stream
        self.markets = markets
        self.event_ms: dict[tuple[str, int], int] = {}  # (market id, close ms) -> E

    async def run(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(math.ceil(now) - now)
            close_ms = round(time.time()) * 1000
            for i, market in enumerate(self.markets):
                event = kline_event(market, "1s", row(i, close_ms - BAR_MS), closed=True)
                if await self.stream.send(f"{market.lower()}@kline_1s", event):
                    self.event_ms[(market, close_ms)] = event["E"]
            await asyncio.sleep(0.5)
            for i, market in enumerate(self.markets):
                forming = kline_event(market, "1s", row(i, close_ms), closed=False)
                await self.stream.send(f"{market.lower()}@kline_1s", forming)


class ChannelTap:
    """Times each signal as Redis publishes it: splits the monitor from the gateway."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.published: dict[str, float] = {}

    async def run(self) -> None:
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(DEFAULT_CHANNEL)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    self.published[json.loads(message["data"])["id"]] = time.time()


class TimedClient(RecordingClient):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.arrivals: list[tuple[float, dict[str, Any]]] = []

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self.arrivals.append((time.time(), data))


def cpu_s(service: ServiceProcess) -> float:
    """CPU seconds (user + system) the process has used so far."""
    assert service.proc is not None
    fields = Path(f"/proc/{service.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    args: argparse.Namespace,
    env: dict[str, str],
    market: Market,
    client: TimedClient,
    tap: ChannelTap,
) -> dict[str, Any]:
    monitor = ServiceProcess("monitor", env)
    try:
        await asyncio.to_thread(monitor.start, True, 60.0)
        await asyncio.sleep(args.settle)
        begin, cpu_begin = time.time(), cpu_s(monitor)
        client.arrivals.clear()
        await asyncio.sleep(args.seconds)
        end, cpu = time.time(), cpu_s(monitor) - cpu_begin
    finally:
        await asyncio.to_thread(monitor.stop)
    latencies, built, published, relayed, ids = [], [], [], [], []
    for arrived, signal in client.arrivals:
        close_ms = round(signal["bar_ts"] * 1000)
        event_s = (
            market.event_ms.get((signal["symbol"].replace("/", ""), close_ms), close_ms) / 1000
        )
        if begin <= event_s <= end:
            latencies.append((arrived - event_s) * 1000)
            built.append((signal["ts"] - event_s) * 1000)  # the monitor stamps ts when it builds
            at_redis = tap.published.get(signal["id"], math.nan)
            published.append((at_redis - signal["ts"]) * 1000)
            relayed.append((arrived - at_redis) * 1000)
            ids.append(signal["id"])
    return {
        "n": len(latencies),
        "dupes": len(ids) - len(set(ids)),
        "ms": latencies,
        "built": built,
        "published": published,
        "relayed": relayed,
        "cpu": cpu / args.seconds,
        "load": os.getloadavg()[0],
    }


async def run(args: argparse.Namespace) -> None:
    markets = [f"S{i:02d}USDT" for i in range(args.symbols)]
    redis_server = ProcessRedis()
    redis_server.start()
    rest = SyntheticRest(markets)
    rest.thread.start()
    env = {"REDIS_URL": redis_server.url, "TRANSPORTS": "websocket", "LOG_LEVEL": "warning"}
    gateway = ServiceProcess("gateway", env).start()
    rows = []
    async with FakeBinanceStream() as stream:
        market = Market(stream, markets)
        ticker = asyncio.create_task(market.run())
        tap = ChannelTap(redis_server.url)
        tapping = asyncio.create_task(tap.run())
        client = TimedClient(gateway.base_url)
        await client.connect()
        base = {
            **env,
            "SOURCE": "exchange",
            "EXCHANGE_ID": "binance",
            "EXCHANGE_TIMEFRAME": "1s",
            "EXCHANGE_URL": rest.url,
            "EXCHANGE_STREAM_URL": stream.url,
            "EXCHANGE_OPTIONS": '{"fetchMarkets": {"types": ["spot"]}}',
            "SYMBOLS": ",".join(f"{m.removesuffix('USDT')}/USDT" for m in markets),
            "STRATEGIES": "sma_cross",
            "STRATEGY_PARAMS": '{"sma_cross": {"fast": 2, "slow": 4}}',
        }
        modes = [("stream", "true", "10")] + [
            ("poll", "false", p) for p in args.polls.split(",") if p
        ]
        try:
            for name, streaming, poll_s in modes:
                mode_env = {
                    **base,
                    "EXCHANGE_STREAM": streaming,
                    "EXCHANGE_POLL_INTERVAL_S": poll_s,
                }
                result = await measure(args, mode_env, market, client, tap)
                rows.append((name, poll_s, result))
                print(f"measured {name} (poll {poll_s} s): {result['n']} signals", flush=True)
        finally:
            ticker.cancel()
            tapping.cancel()
            await asyncio.gather(ticker, tapping, return_exceptions=True)
            await tap.redis.aclose()
            await client.disconnect()
            gateway.stop()
            rest.server.shutdown()
            redis_server.stop()
    report(args, rows)


def report(args: argparse.Namespace, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    print(f"\n{args.symbols} symbols, 1 s candles, {args.seconds:g} s per source, sma_cross 2/4")
    print(
        "| source | EXCHANGE_POLL_INTERVAL_S | signals | dup. | p50 ms | p99 ms | max ms "
        "| event to built p50 / p99 | built to Redis PUBLISH | PUBLISH to client "
        "| monitor CPU | load avg |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, poll_s, r in rows:
        ms = r["ms"] or [math.nan]
        p50, p99 = percentile(ms, 0.5), percentile(ms, 0.99)
        shown = "(fallback only)" if name == "stream" else poll_s
        print(
            f"| {name} | {shown} | {r['n']} | {r['dupes']} | {p50:.1f} | {p99:.1f} "
            f"| {max(ms):.1f} | {pair(r['built'])} | {pair(r['published'])} | {pair(r['relayed'])} "
            f"| {r['cpu'] * 100:.1f} % | {r['load']:.1f} |"
        )


def pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 0.5):.1f} / {percentile(values, 0.99):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured per source")
    parser.add_argument("--settle", type=float, default=5.0, help="left out after ready")
    parser.add_argument("--polls", default="10,1", help="polling intervals to measure, s")
    args = parser.parse_args()
    # Bounded: three monitor start-ups (ccxt's import takes ~10 s each) plus the measurements.
    budget = len([p for p in args.polls.split(",") if p]) + 1
    asyncio.run(asyncio.wait_for(run(args), budget * (args.seconds + args.settle + 90)))


if __name__ == "__main__":
    main()
