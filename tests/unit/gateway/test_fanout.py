"""Fan-out decisions with a stand-in server (pure unit; delivery is proven in e2e tests)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from engineio import packet as eio_packet
from prometheus_client import CollectorRegistry

from gateway.delivery.emitter import SignalEmitter
from gateway.delivery.filters import target_rooms
from gateway.metrics import GatewayMetrics
from gateway.wire.direct import FramedPacket
from gateway.wire.manager import BACKLOG_GAP_S, FanoutManager


class RecordingServer:
    def __init__(self) -> None:
        self.emits: list[tuple[str, Any, dict[str, Any]]] = []

    async def emit(self, event: str, data: Any, **kwargs: Any) -> None:
        self.emits.append((event, data, kwargs))


def test_rooms_follow_the_signal() -> None:
    # Filter rooms in gateway/delivery/filters.py (tests/unit/gateway/test_filters.py).
    assert target_rooms({"symbol": "BTC-USD"}) == ("all", "f:BTC-USD:*:*")
    # No symbol: the rooms of every symbol filter's "no symbol" coordinate too.
    assert target_rooms({"type": "BUY"}) == ("all", "f::*:BUY", "f::*:*", "f:*:*:BUY")


async def test_emits_locally_only_and_counts() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    server = RecordingServer()
    fanout = SignalEmitter(server, metrics, 1024, clock=lambda: 100.25)  # type: ignore[arg-type]

    await fanout.handle(b'{"type":"BUY","price":1,"symbol":"X","ts":100.0}')
    await fanout.handle(b"not json")

    assert server.emits == [
        (
            "new_signal",
            {"type": "BUY", "price": 1, "symbol": "X", "ts": 100.0},
            {"to": target_rooms({"symbol": "X", "type": "BUY"}), "ignore_queue": True},
        ),
    ]
    sample = registry.get_sample_value
    assert sample("qs_gateway_signals_received_total") == 2
    assert sample("qs_gateway_signals_emitted_total") == 1
    assert sample("qs_gateway_signals_rejected_total", {"reason": "not_json"}) == 1
    assert sample("qs_gateway_relay_latency_seconds_sum") == 0.25


class OfferRecorder:
    def __init__(self) -> None:
        self.now: list[bool] = []

    def qsize(self) -> int:
        return 0

    def offer(self, packet: Any, now: bool = True) -> bool:
        self.now.append(now)
        return True


def test_a_fanout_right_behind_the_last_one_leaves_frames_to_the_buffers() -> None:
    manager = FanoutManager(
        "redis://127.0.0.1:1",
        queue_max=10,
        on_slow_client=lambda: None,
        on_delivered=lambda direct, queued: None,
    )
    manager.basic_enter_room("sid-1", "/", None, eio_sid="eio-1")  # connected to "/"
    queue = OfferRecorder()
    sock = SimpleNamespace(closed=False, last_ping=None, queue=queue)
    manager.server = SimpleNamespace(eio=SimpleNamespace(sockets={"eio-1": sock}, ping_timeout=20))
    packet = FramedPacket(eio_packet.MESSAGE, '2["new_signal",{}]')
    manager._deliver(packet, "/", None, None)
    manager._deliver(packet, "/", None, None)  # a backlog: the next signal was already there
    time.sleep(BACKLOG_GAP_S * 2)
    manager._deliver(packet, "/", None, None)
    assert queue.now == [True, False, True]
