"""The parts that keep an idle connection small: the ping wheel, the lazy asyncio parts,
and the queue's on-demand drain (gateway/wire/session.py, lazy.py, queue.py).

Real engine.io sockets and real asyncio; the WebSocket write is a recording stand-in.
tests/integration/hardening/test_memory_per_connection.py checks the whole, in a process.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from engineio import async_socket
from engineio import packet as eio_packet

from gateway.wire.direct import DirectEngineIOServer
from gateway.wire.lazy import NO_ITEMS, NO_WAITERS, Inbox, LazyEvent
from gateway.wire.queue import PING_FRAME, DirectQueue, FramedPacket
from gateway.wire.session import PING_SLOT_S, PingWheel


def engine(ping_interval: float = 0.05) -> DirectEngineIOServer:
    server = DirectEngineIOServer(async_mode="asgi", logger=False, monitor_clients=False)
    server.ping_interval = ping_interval
    server.pings = PingWheel(ping_interval)
    return server


def message(n: int) -> FramedPacket:
    return FramedPacket(eio_packet.MESSAGE, f'2["new_signal",{{"seq":{n}}}]')


async def test_the_wheel_pings_every_socket_with_one_timer_per_slot() -> None:
    server = engine()
    sockets = [async_socket.AsyncSocket(server, f"s{i}") for i in range(500)]
    sockets[0].closing = True  # a closing socket gets no ping, like engine.io's _send_ping
    for sock in sockets:
        sock.last_ping = 1.0  # as after a PONG's schedule_ping(): a ping cycle is due
        sock.schedule_ping()
    assert len(server.pings) == 500
    assert len(server.pings._slots) <= 2  # 500 sockets, at most two 100 ms timers
    assert not [t for t in asyncio.all_tasks() if "_send_ping" in repr(t)]
    await asyncio.sleep(0.05 + 2 * PING_SLOT_S)
    assert len(server.pings) == 0
    assert sockets[0].queue.qsize() == 0
    pinged = [s.queue.get_nowait().packet_type for s in sockets[1:]]
    assert pinged == [eio_packet.PING] * 499
    assert all(s.last_ping and s.last_ping > 1.0 for s in sockets[1:])


async def test_a_socket_that_fails_its_ping_does_not_cost_the_others_theirs() -> None:
    server = engine()
    broken = SimpleNamespace(closing=False, closed=False, queue=None)  # put_nowait fails
    good = async_socket.AsyncSocket(server, "good")
    server.pings.schedule(broken)
    server.pings.schedule(good)
    await asyncio.sleep(0.05 + 2 * PING_SLOT_S)
    assert good.queue.qsize() == 1


async def test_the_inbox_is_a_fifo_for_one_reader() -> None:
    inbox, woken = Inbox(), []
    inbox.on_item = lambda: woken.append(True)
    inbox.put_nowait(1)  # nobody waits: the detached app is told
    assert woken == [True] and await inbox.get() == 1
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="second reader"):
        await inbox.get()
    inbox.put_nowait(2)  # a waiting reader is woken instead
    inbox.put_nowait(3)
    assert await reader == 2 and await inbox.get() == 3
    assert woken == [True, True] and inbox.empty()


async def test_the_lazy_event_behaves_as_asyncio_event() -> None:
    event = LazyEvent()
    assert not event.is_set()
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    event.set()
    assert await waiter is True and event.is_set()
    event.clear()
    assert not event.is_set() and event._event is None  # no deque held while unused


def drained_queue() -> tuple[DirectQueue, list[Any], list[bool]]:
    sock = SimpleNamespace(upgraded=True, upgrading=False, closing=False, closed=False)
    sent: list[Any] = []
    accept = [True]

    def write(frame: bytes, now: bool = True) -> bool:
        return accept[0]

    async def send(event: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # an ASGI send may wait for the transport
        sent.append(event.get("text") or event["type"])

    queue = DirectQueue()
    queue.bind(sock, write, send)
    return queue, sent, accept


async def test_an_idle_queue_holds_no_deques_and_no_task() -> None:
    queue, _, _ = drained_queue()
    assert queue._queue is NO_ITEMS and queue._getters is NO_WAITERS
    assert queue.offer(message(1)) is True  # written directly
    assert queue._drainer is None and queue._queue is NO_ITEMS


async def test_what_cannot_be_written_drains_in_order_then_the_drain_ends() -> None:
    queue, sent, accept = drained_queue()
    accept[0] = False  # the transport is paused
    assert queue.offer(message(1)) is False
    accept[0] = True
    assert queue.offer(message(2)) is False  # behind message 1: queued too
    assert queue.offer(eio_packet.Packet(eio_packet.PING)) is False
    await queue.drained()
    assert sent == [message(1).encode(), message(2).encode(), "2"]
    assert queue._drainer is None and queue._queue is NO_ITEMS
    assert queue.offer(message(3)) is True  # nothing waits: direct again


async def test_a_none_closes_the_websocket_after_what_is_queued() -> None:
    queue, sent, accept = drained_queue()
    accept[0] = False
    queue.offer(message(1))
    queue.put_nowait(None)
    await queue.drained()
    assert sent == [message(1).encode(), "websocket.close"]
    assert queue.offer(message(2)) is False and queue.empty()  # nowhere to go now
    await queue.join()  # engine.io's close(wait=True) does not hang


def test_a_ping_is_one_ready_made_frame() -> None:
    assert PING_FRAME == b"\x81\x012"


def test_the_gateway_raises_its_open_files_limit_to_the_hard_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One socket per client: a container's soft limit (1,024) would cap the clients."""
    import resource

    from gateway.__main__ import raise_open_files_limit

    limits = {"now": (1024, 20000)}
    monkeypatch.setattr(resource, "getrlimit", lambda _kind: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _kind, new: limits.update(now=new))
    assert raise_open_files_limit() == 20000
    assert limits["now"] == (20000, 20000)
    assert raise_open_files_limit() == 20000  # already there: nothing to do
