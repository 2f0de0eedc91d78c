"""The SSE hub on its own: filters, the cheap path with no client, the bounded queue, the
combined connection count, and the emitter's single call before it awaits."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from common.offsets import Position
from gateway.delivery.emitter import SignalEmitter
from gateway.delivery.sse import SseHub, StreamFilter, WithStreams, signal_frame
from gateway.metrics import GatewayMetrics


def hub(queue_max: int = 10) -> tuple[SseHub, GatewayMetrics]:
    metrics = GatewayMetrics(CollectorRegistry())
    return SseHub(metrics, queue_max), metrics


def value(metric: Any) -> float:
    return float(metric._value.get())


def test_filter_follows_the_socketio_rooms_for_symbols_and_matches_strategy_and_type() -> None:
    f = StreamFilter(frozenset({"AAA"}), frozenset({"s1"}), frozenset({"BUY"}))
    assert f.matches({"symbol": "AAA", "strategy": "s1", "type": "BUY"})
    assert not f.matches({"symbol": "BBB", "strategy": "s1", "type": "BUY"})
    assert not f.matches({"symbol": "AAA", "strategy": "s2", "type": "BUY"})
    assert not f.matches({"symbol": "AAA", "strategy": "s1", "type": "SELL"})
    assert not f.matches({"symbol": "AAA", "type": "BUY"})  # no strategy: not s1
    assert f.matches({"strategy": "s1", "type": "BUY"})  # no symbol: every client, as rooms
    assert StreamFilter().matches({"type": "SELL"})


def test_frame_carries_the_offset_as_id_and_one_line_of_json() -> None:
    signal = {"offset": "abcdefgh:1-0", "type": "BUY", "note": "two\nlines"}
    frame = signal_frame(signal)
    assert frame == b"id: abcdefgh:1-0\nevent: signal\ndata: " + orjson.dumps(signal) + b"\n\n"
    assert frame.count(b"\n") == 4
    assert not signal_frame({"type": "BUY"}).startswith(b"id:")


def test_no_live_client_means_nothing_is_encoded() -> None:
    sse, metrics = hub()
    catching_up = sse.connect(StreamFilter())
    sse.offer({"unencodable": object()}, None)  # would raise if it were encoded
    assert catching_up.queue.empty()
    assert value(metrics.sse_deliveries) == 0


async def test_a_full_queue_drops_that_client_only_and_counts_it() -> None:
    sse, metrics = hub(queue_max=2)
    slow, fast = sse.connect(StreamFilter()), sse.connect(StreamFilter())
    sse.join(slow)
    sse.join(fast)
    for n in range(3):
        sse.offer({"type": "BUY", "n": n}, None)
        if not fast.queue.empty():
            fast.queue.get_nowait()
    assert slow.ended.is_set() and not fast.ended.is_set()
    assert value(metrics.sse_dropped) == 1
    assert value(metrics.sse_deliveries) == 5
    sse.join(slow)  # a dropped client never comes back to life
    sse.offer({"type": "BUY"}, None)
    assert slow.queue.qsize() == 2
    assert sse.connected == 2  # still counted until its stream closes
    sse.close(slow)
    assert sse.connected == 1 and value(metrics.sse_clients) == 1


class Sessions:
    def held(self) -> int:
        return 3

    def open(self) -> int:
        return 2

    def knows(self, sid: str) -> bool:
        return sid == "s"


def test_connection_count_adds_streams_to_engineio_sessions() -> None:
    sse, _ = hub()
    count = WithStreams(Sessions(), sse)
    sse.connect(StreamFilter())
    assert (count.held(), count.open(), count.knows("s")) == (4, 3, True)


class Server:
    """Records what the Socket.IO emit saw of the hub, when it was called."""

    def __init__(self, sse: SseHub, client: Any) -> None:
        self.sse = sse
        self.client = client
        self.queued_at_emit: list[int] = []

    async def emit(self, *_args: Any, **_kwargs: Any) -> None:
        self.queued_at_emit.append(self.client.queue.qsize())


async def test_emitter_offers_each_signal_once_before_it_awaits_the_socketio_emit() -> None:
    sse, metrics = hub()
    client = sse.connect(StreamFilter())
    sse.join(client)
    server = Server(sse, client)
    emitter = SignalEmitter(server, metrics, 65536, streams=sse)  # type: ignore[arg-type,unused-ignore]
    emitter.track(Position("aaaaaaaa", (1, 0)))
    for n in (2, 3, 3):  # the second 3 is a backfill overlap: skipped, not offered
        raw = orjson.dumps({"offset": f"aaaaaaaa:{n}-0", "type": "BUY", "price": 1})
        await emitter.handle(raw)
    assert server.queued_at_emit == [1, 2]
    assert client.queue.qsize() == 2
