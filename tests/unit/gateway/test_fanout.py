"""Fan-out decisions with a stand-in server (pure unit; delivery is proven in e2e tests)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from gateway.fanout import SignalFanout, target_rooms
from gateway.metrics import GatewayMetrics


class RecordingServer:
    def __init__(self) -> None:
        self.emits: list[tuple[str, Any, dict[str, Any]]] = []

    async def emit(self, event: str, data: Any, **kwargs: Any) -> None:
        self.emits.append((event, data, kwargs))


def test_rooms_follow_the_symbol() -> None:
    assert target_rooms({"symbol": "BTC-USD"}) == ["all", "symbol:BTC-USD"]
    assert target_rooms({"type": "BUY"}) is None


async def test_emits_locally_only_and_counts() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    server = RecordingServer()
    fanout = SignalFanout(server, metrics, 1024, clock=lambda: 100.25)  # type: ignore[arg-type]

    await fanout.handle(b'{"type":"BUY","price":1,"symbol":"X","ts":100.0}')
    await fanout.handle(b"not json")

    assert server.emits == [
        ("new_signal", {"type": "BUY", "price": 1, "symbol": "X", "ts": 100.0},
         {"to": ["all", "symbol:X"], "ignore_queue": True}),
    ]
    sample = registry.get_sample_value
    assert sample("qs_gateway_signals_received_total") == 2
    assert sample("qs_gateway_signals_emitted_total") == 1
    assert sample("qs_gateway_signals_rejected_total", {"reason": "not_json"}) == 1
    assert sample("qs_gateway_relay_latency_seconds_sum") == 0.25
