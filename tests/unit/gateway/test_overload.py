"""The overload policy in pieces (pure unit; the whole of it runs against a real gateway in
tests/integration/hardening/test_overload.py): the latest_only opt-in, a signal's age from
its offset, the overload state, and the coalesced batch fan-out."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import socketio
from prometheus_client import CollectorRegistry

from gateway.delivery.overload import (
    LATEST_ONLY_ROOM,
    OverloadState,
    offset_age_s,
    wants_latest_only,
)
from gateway.metrics import GatewayMetrics
from gateway.wire.manager import FanoutManager
from gateway.wire.queue import DirectQueue


@pytest.mark.parametrize(
    ("auth", "query", "wanted"),
    [
        ({"latest_only": True}, "", True),
        ({"latest_only": "true"}, "", False),  # auth is JSON: a boolean, not a word
        (None, "EIO=4&transport=websocket&latest_only=1", True),
        (None, "latest_only=TRUE", True),
        (None, "latest_only=0", False),
        (None, "not_latest_only=1", False),
        ({"offset": "x"}, "", False),
    ],
)
def test_latest_only_is_an_explicit_opt_in(auth: Any, query: str, wanted: bool) -> None:
    assert wants_latest_only(auth, query) is wanted


def test_age_comes_from_the_offset_time() -> None:
    assert offset_age_s((1_700_000_000_000, 3), 1_700_000_000.25) == pytest.approx(0.25)
    assert offset_age_s((1_700_000_001_000, 0), 1_700_000_000.0) == 0.0  # Redis clock ahead
    assert offset_age_s(None, 1.0) is None
    assert offset_age_s((0, 5), 1.0) is None


def test_overload_is_entered_past_the_bound_and_left_once_caught_up() -> None:
    registry = CollectorRegistry()
    state = OverloadState(0.1, 64, GatewayMetrics(registry))
    sample = registry.get_sample_value
    state.observe(0.05, waiting=False)
    assert (state.active, state.batch_max()) == (False, 1)
    state.observe(0.2, waiting=False)
    assert (state.active, state.batch_max()) == (True, 64)
    state.observe(0.01, waiting=True)  # young, but the batch was full: more is waiting
    state.observe(0.07, waiting=False)  # under the bound, not under half of it
    assert state.active
    assert sample("qs_gateway_overloaded") == 1
    state.observe(0.01, waiting=False)
    assert not state.active and sample("qs_gateway_overloaded") == 0
    state.observe(None, waiting=False)  # no offset: no evidence either way
    assert sample("qs_gateway_overload_episodes_total") == 1


class Client:
    """A WebSocket client as the batch fan-out sees it: a real DirectQueue on a socket
    whose writes are recorded."""

    def __init__(self, writable: bool = True) -> None:
        self.writes: list[bytes] = []
        self.writable = writable
        self.sock = SimpleNamespace(
            closed=False,
            last_ping=None,
            upgraded=True,
            upgrading=False,
            closing=False,
            queue=DirectQueue(),
        )
        self.sock.queue.bind(self.sock, self.write)

    def write(self, frame: bytes, now: bool) -> bool:
        if not self.writable:
            return False
        self.writes.append(frame)
        return True


def manager_with(clients: dict[str, Client], latest_only: set[str]) -> FanoutManager:
    manager = FanoutManager(
        "redis://127.0.0.1:1",
        queue_max=100,
        on_slow_client=lambda: None,
        on_delivered=lambda direct, queued: None,
    )
    socketio.AsyncServer(client_manager=manager, async_mode="asgi", logger=False)
    for name in clients:
        manager.basic_enter_room(name, "/", None, eio_sid=name)
        manager.basic_enter_room(name, "/", "all")
        if name in latest_only:
            manager.basic_enter_room(name, "/", LATEST_ONLY_ROOM)
    socks = {name: c.sock for name, c in clients.items()}
    manager.server.eio = SimpleNamespace(sockets=socks, ping_timeout=20)
    return manager


def signal(n: int, symbol: str) -> tuple[dict[str, Any], list[str], tuple[str, str]]:
    return {"n": n, "symbol": symbol, "strategy": "s"}, ["all"], (symbol, "s")


def test_a_batch_goes_out_in_one_write_per_client_and_latest_only_keeps_the_newest() -> None:
    clients = {"every": Client(), "latest": Client(), "paused": Client(writable=False)}
    manager = manager_with(clients, latest_only={"latest"})
    items = [signal(0, "A"), signal(1, "B"), signal(2, "A"), signal(3, "A")]

    done = manager.emit_batch("new_signal", items, LATEST_ONLY_ROOM)

    assert done == (4 + 2 + 4, 2)  # deliveries, left out for the latest_only client
    (every,) = clients["every"].writes
    assert [every.count(f'"n":{n}'.encode()) for n in range(4)] == [1, 1, 1, 1]
    assert every.index(b'"n":0') < every.index(b'"n":1') < every.index(b'"n":3')
    (latest,) = clients["latest"].writes
    assert b'"n":1' in latest and b'"n":3' in latest
    assert b'"n":0' not in latest and b'"n":2' not in latest
    # A client that cannot take a write now gets every signal queued, in order.
    queue = clients["paused"].sock.queue
    assert [queue.get_nowait().data for _ in range(queue.qsize())] == [
        f'2["new_signal",{{"n":{n},"symbol":"{s}","strategy":"s"}}]'
        for n, s in ((0, "A"), (1, "B"), (2, "A"), (3, "A"))
    ]


def test_without_latest_only_clients_nothing_is_left_out() -> None:
    clients = {"a": Client(), "b": Client()}
    manager = manager_with(clients, latest_only=set())
    done = manager.emit_batch("new_signal", [signal(n, "A") for n in range(5)], LATEST_ONLY_ROOM)
    assert done == (10, 0)
    assert clients["a"].writes == clients["b"].writes and len(clients["a"].writes) == 1


def test_a_client_whose_queue_is_full_is_dropped_not_sent_the_batch() -> None:
    """Shedding stays per client: the batch path applies CLIENT_QUEUE_MAX like the single one."""
    clients = {"reader": Client(), "stopped": Client(writable=False)}
    manager = manager_with(clients, latest_only=set())
    dropped: list[str] = []
    manager._on_slow_client = lambda: dropped.append("stopped")
    closing: list[Any] = []
    manager.server.start_background_task = lambda fn, *a, **kw: closing.append(kw)  # type: ignore[method-assign]
    stopped = clients["stopped"].sock
    stopped.server = SimpleNamespace(reason=SimpleNamespace(TRANSPORT_ERROR="transport error"))
    stopped.close = lambda **kw: None
    for n in range(100):  # queue_max
        stopped.queue.offer(n, False)

    done = manager.emit_batch("new_signal", [signal(n, "A") for n in range(3)], LATEST_ONLY_ROOM)

    assert done == (3, 0)  # the reader's three; nothing for the stopped client
    assert dropped == ["stopped"] and closing[0]["reason"] == "transport error"
    assert stopped.queue.qsize() == 1  # what was queued is freed; a None ends its writer
    assert len(clients["reader"].writes) == 1
