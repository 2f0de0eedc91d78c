"""A local stand-in for Binance's raw WebSocket market streams on 127.0.0.1.

It speaks the documented protocol (developers.binance.com, "WebSocket Streams"): a client
connects to ``/ws/...``, sends ``{"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"],
"id": 1}``, gets ``{"result": null, "id": 1}``, then receives one kline event per update:
``{"e": "kline", "E": <event ms>, "s": "BTCUSDT", "k": {"t", "T", "s", "i", "o", "c", "h",
"l", "v", "n", "x" (closed), "q", "V", "Q", "B"}}``. The test (or the benchmark) decides
what is sent and when, and can drop every connection, as Binance does at its 24-hour limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


def kline_event(
    market_id: str,
    interval: str,
    row: list[Any],
    closed: bool,
    event_ms: int | None = None,
) -> dict[str, Any]:
    """A kline event from a REST kline row ``[t, o, h, l, c, v, T, q, n, V, Q, B]``."""
    t, o, h, low, c, v, close_t, q, n, vb, qb, _ = row
    return {
        "e": "kline",
        "E": event_ms if event_ms is not None else int(time.time() * 1000),
        "s": market_id,
        "k": {
            "t": t,
            "T": close_t,
            "s": market_id,
            "i": interval,
            "f": 100,
            "L": 200,
            "o": o,
            "c": c,
            "h": h,
            "l": low,
            "v": v,
            "n": n,
            "x": closed,
            "q": q,
            "V": vb,
            "Q": qb,
            "B": "0",
        },
    }


class FakeBinanceStream:
    def __init__(self) -> None:
        self.connections: dict[ServerConnection, set[str]] = {}
        self.subscribes = 0  # SUBSCRIBE requests answered, over all connections
        self._changed = asyncio.Condition()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> FakeBinanceStream:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, conn: ServerConnection) -> None:
        self.connections[conn] = set()
        try:
            async for raw in conn:
                request = json.loads(raw)
                if request.get("method") == "SUBSCRIBE":
                    self.connections[conn].update(request["params"])
                    await conn.send(json.dumps({"result": None, "id": request["id"]}))
                    async with self._changed:
                        self.subscribes += 1
                        self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(conn, None)

    async def wait_subscribes(self, count: int, timeout_s: float = 10.0) -> None:
        """Until ``count`` SUBSCRIBE requests have been answered in all."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: self.subscribes >= count)

    async def send(self, stream: str, message: dict[str, Any] | str) -> int:
        """To every connection subscribed to ``stream``; returns how many got it."""
        data = message if isinstance(message, str) else json.dumps(message)
        sent = 0
        for conn, streams in list(self.connections.items()):
            if stream in streams:
                try:
                    await conn.send(data)
                    sent += 1
                except ConnectionClosed:
                    continue
        return sent

    async def kline(
        self, market_id: str, interval: str, row: list[Any], closed: bool = True
    ) -> dict[str, Any]:
        event = kline_event(market_id, interval, row, closed)
        await self.send(f"{market_id.lower()}@kline_{interval}", event)
        return event

    async def drop_connections(self) -> None:
        for conn in list(self.connections):
            await conn.close(code=1001, reason="going away")
