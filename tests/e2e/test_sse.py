"""GET /api/signals/stream on real gateway processes, real Redis and real HTTP clients:
live order and ids, filters, resume (gap once, in order, then live; epochs), heartbeats,
slow clients, the connection limit, tokens, and ``curl -N``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.clients import RecordingClient

pytestmark = pytest.mark.e2e

STREAM = "/api/signals/stream"
SECRET = "an-hs256-secret-that-is-long-enough-0123456789"


def sig(i: int, symbol: str = "AAA", strategy: str = "t", side: str = "BUY") -> dict[str, Any]:
    return make_signal(
        signal_id=f"{symbol}:{strategy}:{i}",
        signal_type=side,  # type: ignore[arg-type]
        price=float(i),
        symbol=symbol,
        strategy=strategy,
    )


async def publish(client: aioredis.Redis, signals: list[dict[str, Any]]) -> list[str]:
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    offsets = []
    for signal in signals:
        offset = await publisher.publish(signal)
        assert offset is not None
        offsets.append(str(offset))
    return offsets


async def flow_until(
    client: aioredis.Redis, opened: asyncio.Event, at_least: int, at_most: int = 20_000
) -> list[str]:
    """Signals one after another, at least ``at_least`` and on until ``opened`` is set, so
    resumes started meanwhile land inside the flow however slowly a loaded machine connects
    them."""
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    offsets: list[str] = []
    while len(offsets) < at_least or (not opened.is_set() and len(offsets) < at_most):
        offset = await publisher.publish(sig(len(offsets) + 1))
        assert offset is not None
        offsets.append(str(offset))
        await asyncio.sleep(0)  # let the resumes' requests in between publishes
    return offsets


class SseReader:
    """An httpx streaming GET that parses Server-Sent Events as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.ended = False
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            async for line in self.response.aiter_lines():
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line:
                    name, _, value = line.partition(": ")
                    event[name] = orjson.loads(value) if name == "data" else value
                elif event:
                    self.events.append(event)
                    event = {}
        except httpx.HTTPError:
            pass
        self.ended = True

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == kind]

    def signals(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.of("signal")]

    async def wait_for(self, count: int, kind: str = "signal", timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.of(kind)) < count:
            assert time.monotonic() < deadline, f"got {len(self.of(kind))} {kind}, want {count}"
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.response.aclose()


@contextlib.asynccontextmanager
async def sse(
    base_url: str, params: Any = None, headers: dict[str, str] | None = None
) -> AsyncIterator[SseReader]:
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None)) as http:
        request = http.build_request("GET", STREAM, params=params, headers=headers)
        response = await http.send(request, stream=True)
        assert response.status_code == 200, (await response.aread()).decode()
        reader = SseReader(response)
        try:
            yield reader
        finally:
            await reader.close()


async def wait_metric(gateway: Any, name: str, value: float, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := gateway.metric(name)) != value:
        assert time.monotonic() < deadline, f"{name} = {got}, want {value}"
        await asyncio.sleep(0.05)


async def test_live_signals_arrive_in_order_with_their_offsets_as_ids(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    async with sse(gateway.base_url) as stream:
        headers = stream.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert (headers["cache-control"], headers["x-accel-buffering"]) == ("no-cache", "no")
        await wait_metric(gateway, "qs_gateway_sse_clients", 1)
        offsets = await publish(redis_client, [sig(i) for i in range(20)])
        await stream.wait_for(20)
        assert [e["id"] for e in stream.of("signal")] == offsets
        assert [s["id"] for s in stream.signals()] == [f"AAA:t:{i}" for i in range(20)]
        assert [s["offset"] for s in stream.signals()] == offsets
        assert gateway.metric("qs_gateway_sse_deliveries_total") == 20
    # Removed at once when the client goes.
    await wait_metric(gateway, "qs_gateway_sse_clients", 0, timeout_s=1.0)


async def test_filters_by_symbol_strategy_and_type(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    wanted = {
        "aaa": [("symbol", "AAA")],
        "aaa_or_bbb": [("symbol", "AAA,BBB")],
        "repeated": [("symbol", "AAA"), ("symbol", "CCC")],
        "s2": [("strategy", "s2")],
        "sell": [("type", "SELL")],
        "aaa_s1_buy": [("symbol", "AAA"), ("strategy", "s1"), ("type", "BUY")],
        "all": [],
    }
    signals = [
        sig(i, symbol, strategy, side)
        for i, (symbol, strategy, side) in enumerate(
            [
                (s, st, sd)
                for s in ("AAA", "BBB", "CCC")
                for st in ("s1", "s2")
                for sd in ("BUY", "SELL")
            ]
        )
    ]
    async with contextlib.AsyncExitStack() as stack:
        streams = {
            k: await stack.enter_async_context(sse(gateway.base_url, p)) for k, p in wanted.items()
        }
        await wait_metric(gateway, "qs_gateway_sse_clients", len(wanted))
        await publish(redis_client, signals)
        await streams["all"].wait_for(len(signals))
        await asyncio.sleep(0.3)
        got = {
            k: [(s["symbol"], s["strategy"], s["type"]) for s in v.signals()]
            for k, v in streams.items()
        }
    every = [(s["symbol"], s["strategy"], s["type"]) for s in signals]
    assert got["all"] == every
    assert got["aaa"] == [t for t in every if t[0] == "AAA"]
    assert got["aaa_or_bbb"] == [t for t in every if t[0] in ("AAA", "BBB")]
    assert got["repeated"] == [t for t in every if t[0] in ("AAA", "CCC")]
    assert got["s2"] == [t for t in every if t[1] == "s2"]
    assert got["sell"] == [t for t in every if t[2] == "SELL"]
    assert got["aaa_s1_buy"] == [("AAA", "s1", "BUY")]


async def test_bad_requests_are_refused_with_a_reason(service_factory: ServiceFactory) -> None:
    gateway = service_factory("gateway")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        bad_id = await http.get(STREAM, headers={"Last-Event-ID": "yesterday"})
        bad_type = await http.get(STREAM, params={"type": "HOLD"})
    assert bad_id.status_code == 400 and "Last-Event-ID" in bad_id.json()["message"]
    assert bad_type.status_code == 400 and "BUY or SELL" in bad_type.json()["message"]
    assert bad_type.json()["error"] == "invalid_query"
    assert gateway.metric("qs_gateway_sse_clients") == 0


async def test_resume_with_last_event_id_gets_the_gap_once_in_order_then_live(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    async with sse(gateway.base_url, {"symbol": "AAA"}) as first:
        seen = await publish(redis_client, [sig(0), sig(1, "BBB")])
        await first.wait_for(1)
        last_id = first.of("signal")[-1]["id"]
    assert last_id == seen[0]
    missed = await publish(redis_client, [sig(2), sig(3, "BBB"), sig(4)])
    async with sse(gateway.base_url, {"symbol": "AAA"}, {"Last-Event-ID": last_id}) as again:
        await again.wait_for(1, "recovery")
        live = await publish(redis_client, [sig(5), sig(6, "BBB")])
        await again.wait_for(3)
        await asyncio.sleep(0.3)
        assert [e["id"] for e in again.of("signal")] == [missed[0], missed[2], live[0]]
        kinds = [e["event"] for e in again.events]
        assert kinds == ["signal", "signal", "recovery", "signal"]
        epoch = last_id.split(":")[0]
        assert again.of("recovery")[0]["data"] == {
            "complete": True,
            "recovered": 2,
            "since": last_id,
            "reason": None,
            "epoch": epoch,
        }
    assert gateway.metric("qs_gateway_recovered_signals_total") == 2


async def test_resume_while_signals_flow_misses_none_and_repeats_none(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    """The ordering argument under load: resumes land in the middle of a fast series."""
    gateway = service_factory("gateway")
    start = await publish(redis_client, [sig(0)])
    opened = asyncio.Event()
    flow = asyncio.create_task(flow_until(redis_client, opened, at_least=400))
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for _ in range(4):
            await asyncio.sleep(0.04)
            streams.append(
                await stack.enter_async_context(sse(gateway.base_url, {"offset": start[0]}))
            )
        opened.set()
        offsets = await flow
        for stream in streams:
            await stream.wait_for(len(offsets))
            await stream.wait_for(1, "recovery")
        await asyncio.sleep(0.2)
        for stream in streams:
            assert [e["id"] for e in stream.of("signal")] == offsets
    recovered = gateway.metric("qs_gateway_recovered_signals_total")
    assert 0 < recovered < 4 * len(offsets), "the resumes did not land inside the flow"


async def test_resume_across_an_epoch_change_says_so(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    old = await publish(redis_client, [sig(i) for i in range(3)])
    await redis_client.flushall()
    new = await publish(redis_client, [sig(100), sig(101)])
    assert not new[0].startswith(old[0].split(":")[0])
    async with sse(gateway.base_url, {"offset": old[0]}) as stream:
        await stream.wait_for(1, "recovery")
        answer = stream.of("recovery")[0]["data"]
        assert (answer["complete"], answer["reason"], answer["recovered"]) == (
            False,
            "epoch_changed",
            2,
        )
        assert answer["epoch"] == new[0].split(":")[0]
        assert [e["id"] for e in stream.of("signal")] == new


async def test_heartbeats_keep_an_idle_stream_talking(service_factory: ServiceFactory) -> None:
    gateway = service_factory("gateway", sse_heartbeat_s=0.2)
    async with sse(gateway.base_url) as stream:
        await asyncio.sleep(1.1)
        assert stream.comments.count("ping") >= 4
        assert not stream.events


def non_reader(port: int) -> socket.socket:
    """A raw HTTP client with a tiny receive buffer that sends its request and never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {STREAM} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


async def test_a_client_that_stops_reading_is_dropped_and_others_get_everything(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", sse_client_queue_max=20)
    stuck = non_reader(gateway.port)
    try:
        async with sse(gateway.base_url) as healthy:
            await wait_metric(gateway, "qs_gateway_sse_clients", 2)
            pad = "x" * 16_000
            for i in range(300):
                message = {"type": "BUY", "price": 1, "symbol": "AAA", "n": i, "pad": pad}
                await redis_client.publish(DEFAULT_CHANNEL, orjson.dumps(message))
                if i % 20 == 0:
                    await asyncio.sleep(0.01)
            await healthy.wait_for(300, timeout_s=20)
            assert [s["n"] for s in healthy.signals()] == list(range(300))
            assert gateway.metric("qs_gateway_sse_clients_dropped_total") == 1
            # The dropped stream stops counting once its last write is given up.
            await wait_metric(gateway, "qs_gateway_sse_clients", 1)
    finally:
        stuck.close()


async def test_sse_streams_count_in_max_connections_with_socketio_sessions(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    gateway = service_factory("gateway", max_connections=2)
    await client_factory(gateway.base_url)
    async with sse(gateway.base_url):
        async with httpx.AsyncClient(base_url=gateway.base_url) as http:
            full = await http.get(STREAM)
            assert full.status_code == 503 and full.headers["retry-after"]
            handshake = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
            assert handshake.status_code == 503
        assert gateway.metric("qs_gateway_connections_refused_total") == 2
    # The stream's slot is free again: a Socket.IO client gets in.
    await wait_metric(gateway, "qs_gateway_sse_clients", 0, timeout_s=1.0)
    extra = RecordingClient(gateway.base_url)
    await extra.connect()
    await extra.disconnect()


def token(**claims: Any) -> str:
    return jwt.encode({"sub": "bob", "exp": time.time() + 300, **claims}, SECRET, "HS256")


async def test_tokens_are_required_and_their_symbols_claim_limits_the_stream(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", auth_required="true", jwt_secret=SECRET)
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        assert (await http.get(STREAM)).status_code == 401
        assert (await http.get(STREAM, params={"token": token() + "x"})).status_code == 401
        limited = {"token": token(symbols=["AAA"])}
        outside = await http.get(STREAM, params={**limited, "symbol": "BBB"})
        assert outside.status_code == 403 and "BBB" in outside.text
    bearer = {"Authorization": f"Bearer {token(symbols=['AAA'])}"}
    async with (
        sse(gateway.base_url, limited) as by_query,
        sse(gateway.base_url, None, bearer) as by_header,
    ):
        await wait_metric(gateway, "qs_gateway_sse_clients", 2)
        await publish(redis_client, [sig(0, "BBB"), sig(1, "AAA")])
        await by_query.wait_for(1)
        await by_header.wait_for(1)
        await asyncio.sleep(0.3)
        assert [s["symbol"] for s in by_query.signals()] == ["AAA"]
        assert [s["symbol"] for s in by_header.signals()] == ["AAA"]
    assert gateway.metric("qs_gateway_auth_refused_total", {"reason": "missing_token"}) == 1
    assert gateway.metric("qs_gateway_auth_refused_total", {"reason": "bad_signature"}) == 1


async def test_curl_shows_signals_as_they_come(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    curl = await asyncio.create_subprocess_exec(
        "curl",
        "-N",
        "-s",
        "--max-time",
        "10",
        f"{gateway.base_url}{STREAM}",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await wait_metric(gateway, "qs_gateway_sse_clients", 1)
        offsets = await publish(redis_client, [sig(7)])
        assert curl.stdout is not None
        async with asyncio.timeout(5):
            lines = [(await curl.stdout.readline()).decode() for _ in range(3)]
        assert lines[0] == f"id: {offsets[0]}\n"
        assert lines[1] == "event: signal\n"
        assert orjson.loads(lines[2].removeprefix("data: "))["id"] == "AAA:t:7"
    finally:
        curl.kill()
        await curl.wait()
