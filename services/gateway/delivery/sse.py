"""Server-Sent Events subscribers: who gets which signal, through a bounded queue each.

The emitter hands every signal it emits to ``SseHub.offer`` once, whatever the number of
SSE clients: with none live that is one truth test. With some, the event's bytes are
encoded once and offered to each live client whose filter takes it, without awaiting:
a client whose queue (``SSE_CLIENT_QUEUE_MAX``) is full has fallen behind and is dropped
(counted), so it can neither grow the gateway's memory nor delay anyone else. Its stream
then ends, and an EventSource reconnects with ``Last-Event-ID`` and resumes from history.

A resuming client is connected (counted) but not live while ``CatchUp`` sends it the gap
through the same queue; ``join`` makes it live without awaiting (gateway/delivery/
recovery.py has the ordering argument).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from common.constants import OFFSET_FIELD
from common.logging import get_logger
from common.offsets import Position
from gateway.delivery.filters import SignalFilter
from gateway.edge.guard import SessionCount
from gateway.metrics import GatewayMetrics

log = get_logger(__name__)

SIGNAL = b"signal"
RECOVERY = b"recovery"
PING = b": ping\n\n"


def event_frame(event: bytes, data: dict[str, Any], event_id: str | None = None) -> bytes:
    """One SSE event. orjson never writes a raw newline, so ``data`` is a single line."""
    head = b"id: " + event_id.encode() + b"\n" if event_id else b""
    return head + b"event: " + event + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def signal_frame(signal: dict[str, Any]) -> bytes:
    # The offset passed the schema's position pattern: no newline can end the id early.
    offset = signal.get(OFFSET_FIELD)
    return event_frame(SIGNAL, signal, offset if isinstance(offset, str) else None)


#: A stream's filter is the one filter model (its rule: gateway/delivery/filters.py).
StreamFilter = SignalFilter


class SseClient:
    """One stream: its filter, its queue of encoded events, and whether it was dropped."""

    __slots__ = ("ended", "filter", "queue")

    def __init__(self, stream_filter: StreamFilter, queue_max: int) -> None:
        self.filter = stream_filter
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(queue_max)
        #: Set when the hub dropped the client: its stream should end.
        self.ended = asyncio.Event()


class SseHub:
    def __init__(self, metrics: GatewayMetrics, queue_max: int) -> None:
        self._metrics = metrics
        self._queue_max = queue_max
        self._live: dict[SseClient, None] = {}  # insertion-ordered set
        self._open: set[SseClient] = set()

    @property
    def connected(self) -> int:
        """Streams open on this replica, catching up or live (MAX_CONNECTIONS counts them)."""
        return len(self._open)

    def connect(self, stream_filter: StreamFilter) -> SseClient:
        client = SseClient(stream_filter, self._queue_max)
        self._open.add(client)
        self._metrics.sse_clients.set(self.connected)
        return client

    def join(self, client: SseClient) -> None:
        """Make ``client`` live. Never awaits (recovery's ordering argument relies on it)."""
        if not client.ended.is_set():
            self._live[client] = None

    def close(self, client: SseClient) -> None:
        """The stream ended (disconnect, drop, expiry): stop delivering and stop counting."""
        self._live.pop(client, None)
        client.ended.set()
        self._open.discard(client)
        self._metrics.sse_clients.set(self.connected)

    def end_all(self) -> None:
        """Shutdown: end every stream cleanly, so EventSources resume on another replica."""
        for client in list(self._open):
            self._live.pop(client, None)
            client.ended.set()

    def offer(self, signal: dict[str, Any], _position: Position | None) -> None:
        """Called by the emitter once per emitted signal, before it awaits anything."""
        if not self._live:
            return
        frame = signal_frame(signal)
        delivered = 0
        slow: list[SseClient] = []
        for client in self._live:
            if client.filter.matches(signal):
                try:
                    client.queue.put_nowait(frame)
                    delivered += 1
                except asyncio.QueueFull:
                    slow.append(client)
        for client in slow:
            self.drop(client)
        if delivered:
            self._metrics.sse_deliveries.inc(delivered)

    def deliver(self, client: SseClient, frame: bytes) -> None:
        """One event for one live client (the recovery answer), under the same bound."""
        try:
            client.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.drop(client)

    def drop(self, client: SseClient) -> None:
        if client.ended.is_set():
            return
        self._live.pop(client, None)
        client.ended.set()
        self._metrics.sse_dropped.inc()
        log.info("sse_client_dropped", reason="queue_full", queue_max=self._queue_max)


class SseSink:
    """``RecoverySink`` for one SSE client: the gap goes through its own queue."""

    __slots__ = ("_client", "_hub")

    def __init__(self, hub: SseHub, client: SseClient) -> None:
        self._hub = hub
        self._client = client

    def wants(self, signal: dict[str, Any]) -> bool:
        return self._client.filter.matches(signal)

    async def send(self, signal: dict[str, Any]) -> None:
        # Not live yet: waiting here slows only this client's own catch-up.
        await self._client.queue.put(signal_frame(signal))

    def join(self) -> None:
        self._hub.join(self._client)

    async def answer(self, answer: dict[str, Any]) -> None:
        self._hub.deliver(self._client, event_frame(RECOVERY, answer))


class WithStreams:
    """Engine.IO sessions plus SSE streams: what ``MAX_CONNECTIONS`` limits.

    Wraps the guard's ``SessionCount`` (gateway.edge.guard) so the guard itself is unchanged.
    """

    __slots__ = ("_hub", "_sessions")

    def __init__(self, sessions: SessionCount, hub: SseHub) -> None:
        self._sessions = sessions
        self._hub = hub

    def held(self) -> int:
        return self._sessions.held() + self._hub.connected

    def open(self) -> int:
        return self._sessions.open() + self._hub.connected

    def knows(self, sid: str) -> bool:
        return self._sessions.knows(sid)
