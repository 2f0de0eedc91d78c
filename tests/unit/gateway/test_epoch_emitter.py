"""The emitter across epochs, and where a new epoch's catch-up starts (start_after)."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from common.offsets import Position
from common.publish import Epoch
from gateway.delivery.emitter import SignalEmitter
from gateway.delivery.history import start_after
from gateway.metrics import GatewayMetrics


class RecordingServer:
    """Stands in for the Socket.IO server: the emitter only calls ``emit``."""

    def __init__(self) -> None:
        self.emitted: list[dict[str, Any]] = []

    async def emit(self, _event: str, data: dict[str, Any], **_kwargs: Any) -> None:
        self.emitted.append(data)


def signal(offset: str, n: int) -> bytes:
    return orjson.dumps({"offset": offset, "type": "BUY", "price": 1.0, "n": n})


def make() -> tuple[SignalEmitter, RecordingServer, GatewayMetrics]:
    sio = RecordingServer()
    metrics = GatewayMetrics(CollectorRegistry())
    emitter = SignalEmitter(sio, metrics, 65536)  # type: ignore[arg-type,unused-ignore]
    emitter.track(Position("aaaaaaaa", (100, 0)))
    return emitter, sio, metrics


def changes(metrics: GatewayMetrics) -> float:
    return float(metrics.history_epoch_changes._value.get())


async def test_a_new_epoch_seen_live_is_adopted_even_with_lower_ids() -> None:
    emitter, sio, metrics = make()
    await emitter.handle(signal("aaaaaaaa:101-0", 1))
    await emitter.handle(signal("aaaaaaaa:100-5", 2))  # already passed: skipped
    # After a failover to a server with a slower clock, the new epoch's ids are lower.
    await emitter.handle(signal("bbbbbbbb:50-0", 3))
    await emitter.handle(signal("bbbbbbbb:51-0", 4))
    assert [s["n"] for s in sio.emitted] == [1, 3, 4]
    assert emitter.position == Position("bbbbbbbb", (51, 0))
    assert changes(metrics) == 1


async def test_an_epoch_change_is_counted_once_whoever_notices_it() -> None:
    emitter, _sio, metrics = make()
    assert emitter.notice_epoch("bbbbbbbb", "stats")
    assert not emitter.notice_epoch("bbbbbbbb", "recovery")
    await emitter.handle(signal("bbbbbbbb:1-0", 1))
    assert changes(metrics) == 1


async def test_bare_offsets_stay_in_the_tracked_epoch() -> None:
    emitter, sio, _metrics = make()
    await emitter.handle(signal("101-0", 1))
    await emitter.handle(signal("99-0", 2))
    assert [s["n"] for s in sio.emitted] == [1]
    assert emitter.position == Position("aaaaaaaa", (101, 0))


def test_start_after() -> None:
    epoch = Epoch("bbbbbbbb", base=(500, 0), prev="aaaaaaaa")
    assert start_after(Position("bbbbbbbb", (700, 1)), epoch) == (700, 1)
    # The epoch just before: the entries up to the base survived; past it they were lost.
    assert start_after(Position("aaaaaaaa", (400, 0)), epoch) == (400, 0)
    assert start_after(Position("aaaaaaaa", (900, 0)), epoch) == (500, 0)
    # Older or unknown epochs: only the new epoch's own entries can be vouched for.
    assert start_after(Position("cccccccc", (400, 0)), epoch) == (500, 0)
    assert start_after(Position(None, (400, 0)), epoch) == (500, 0)
