"""Direct WebSocket writes: framing, the order rules of the queue, and the protocol's gate.

Pure unit tests with stand-in sockets and a recording transport; the e2e test
tests/e2e/test_direct_writes.py proves the same rules with real processes and clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from types import SimpleNamespace
from typing import Any

from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_socket import AsyncSocket
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from gateway.wire.direct import (
    DIRECT_SEND,
    POLL_BATCH_MAX,
    DirectQueue,
    DirectSendProtocol,
    FramedPacket,
    release_poll,
    text_frame,
)

SIGNAL_TEXT = '2["new_signal",{"type":"BUY","price":60000,"note":"é"}]'


def parse_frame(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


def test_the_frame_is_an_unmasked_text_frame_of_the_engineio_packet() -> None:
    packet = FramedPacket(eio_packet.MESSAGE, SIGNAL_TEXT)
    frame = parse_frame(packet.ws_frame)
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert frame.data.decode() == "4" + SIGNAL_TEXT
    assert packet.ws_frame is packet.ws_frame  # built once for every recipient
    big = "x" * 70_000  # 64-bit length form
    assert parse_frame(text_frame(big)).data.decode() == big


class Writes:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.now: list[bool] = []
        self.accept = True

    def __call__(self, frame: bytes, now: bool = True) -> bool:
        if self.accept:
            self.frames.append(frame)
            self.now.append(now)
        return self.accept


def bound_queue(**state: bool) -> tuple[DirectQueue, Writes, SimpleNamespace]:
    sock = SimpleNamespace(upgraded=True, upgrading=False, closing=False, closed=False)
    vars(sock).update(state)
    queue, writes = DirectQueue(), Writes()
    queue.bind(sock, writes)
    return queue, writes, sock


def message(n: int) -> FramedPacket:
    return FramedPacket(eio_packet.MESSAGE, f'2["new_signal",{{"seq":{n}}}]')


def test_a_message_is_written_directly_when_nothing_waits() -> None:
    queue, writes, _ = bound_queue()
    assert queue.offer(message(1)) is True
    queue.put_nowait(message(2))  # engine.io's own path (socket.send) takes the same road
    assert writes.frames == [message(1).ws_frame, message(2).ws_frame]
    assert queue.empty()
    assert queue.offer(message(3), now=False) is True
    assert writes.now == [True, True, False]  # the fan-out's choice reaches the protocol


def test_control_packets_take_the_writer_and_what_follows_waits_behind_them() -> None:
    queue, writes, _ = bound_queue()
    queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
    assert queue.offer(message(1)) is False  # the NOOP is still queued: keep the order
    taken = [queue.get_nowait(), queue.get_nowait()]  # the writer holds both, unsent
    assert queue.offer(message(2)) is False  # a direct write would overtake them
    for _ in taken:
        queue.task_done()
    assert queue.offer(message(3)) is False  # message 2 is still queued
    while not queue.empty():  # the writer sends messages 2 and 3
        queue.get_nowait()
        queue.task_done()
    assert queue.offer(message(4)) is True
    assert writes.frames == [message(4).ws_frame]


def test_a_declined_write_queues_the_message() -> None:
    queue, writes, _ = bound_queue()
    writes.accept = False  # transport paused
    assert queue.offer(message(1)) is False
    writes.accept = True
    assert queue.offer(message(2)) is False  # behind message 1
    assert queue.qsize() == 2


def test_no_direct_write_before_the_websocket_is_in_use_or_after_close() -> None:
    for state in ({"upgraded": False}, {"upgrading": True}, {"closing": True}, {"closed": True}):
        queue, writes, _ = bound_queue(**state)
        assert queue.offer(message(1)) is False, state
        assert writes.frames == []
    unbound = DirectQueue()  # long-polling: never bound to a WebSocket
    assert unbound.offer(message(1)) is False and unbound.qsize() == 1
    binary = eio_packet.Packet(eio_packet.MESSAGE, b"\x01")
    queue, writes, _ = bound_queue()
    assert queue.offer(binary) is False


def polling_socket() -> AsyncSocket:
    """engine.io's own socket class, on a stand-in server that makes DirectQueues."""
    server = SimpleNamespace(ping_interval=5, ping_timeout=5, create_queue=DirectQueue)
    return AsyncSocket(server, "sid")


async def test_a_poll_returns_no_more_packets_than_the_python_client_decodes() -> None:
    sock = polling_socket()
    for n in range(40):
        sock.queue.put_nowait(message(n))
    batches = [await sock.poll() for _ in range(3)]
    assert [len(b) for b in batches] == [POLL_BATCH_MAX, POLL_BATCH_MAX, 40 - 2 * POLL_BATCH_MAX]
    sent = [message(n).encode() for n in range(40)]
    assert [p.encode() for batch in batches for p in batch] == sent  # in order, none lost
    for batch in batches:  # what the official Python client accepts in one response
        encoded = eio_payload.Payload(packets=batch).encode()
        assert len(eio_payload.Payload(encoded_payload=encoded).packets) == len(batch)


async def test_a_closing_polling_socket_gets_its_held_poll_answered() -> None:
    sock = polling_socket()
    held = asyncio.ensure_future(sock.poll())
    await asyncio.sleep(0)
    assert not held.done()
    release_poll(sock)
    assert await asyncio.wait_for(held, 1) == []  # an empty payload, not a 10 s wait
    sock.upgraded = True  # a WebSocket's writer is ended by engine.io itself
    release_poll(sock)
    assert sock.queue.empty()


def test_discard_empties_the_queue_past_the_poll_batch_limit() -> None:
    queue = DirectQueue()
    for n in range(POLL_BATCH_MAX + 5):
        queue.put_nowait(message(n))
    assert queue.discard() == POLL_BATCH_MAX + 5
    assert queue.empty()
    queue.put_nowait(None)  # then the writer's end-of-stream marker still goes through
    assert queue.qsize() == 1


class RecordingTransport:
    """Keeps what is written to it, as uvloop's transport buffers it until the loop turn ends."""

    def __init__(self, sock: socket.socket | None = None, tls: bool = False) -> None:
        self.written = bytearray()
        self.extra = {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}
        self.extra |= {"socket": sock} if sock else {}
        self.extra |= {"sslcontext": ssl.create_default_context()} if tls else {}

    def write(self, data: bytes) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return len(self.written)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


HANDSHAKE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def accepted_protocol(
    transport: RecordingTransport | None = None,
) -> tuple[DirectSendProtocol, RecordingTransport]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    config = Config(app=app, ws=DirectSendProtocol, ws_per_message_deflate=False)
    config.load()
    protocol = DirectSendProtocol(config, ServerState(), {})
    transport = transport or RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(HANDSHAKE)
    assert protocol.scope["extensions"][DIRECT_SEND] == protocol.write_frame
    assert protocol.write_frame(b"early") is False  # not accepted yet
    await protocol.send({"type": "websocket.accept"})
    transport.written.clear()
    return protocol, transport


async def test_the_protocol_writes_only_when_no_send_is_pending() -> None:
    protocol, transport = await accepted_protocol()
    assert protocol.write_frame(b"a") is True
    protocol.pause_writing()
    assert protocol.write_frame(b"b") is False
    pending = asyncio.create_task(protocol.send({"type": "websocket.send", "text": "queued"}))
    await asyncio.sleep(0)
    protocol.resume_writing()
    # The pending send has not resumed yet: a direct write now would overtake it.
    assert protocol.write_frame(b"c") is False
    await pending
    assert protocol.write_frame(b"d") is True
    assert transport.written.startswith(b"a")
    assert transport.written.endswith(b"queued" + b"d")
    for task in protocol.tasks:
        task.cancel()


def recv_all(sock: socket.socket) -> bytes:
    data = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := sock.recv(1 << 20):
            data += chunk
    return bytes(data)


async def test_a_frame_reaches_the_socket_during_the_call_unless_it_may_wait() -> None:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    protocol, transport = await accepted_protocol(RecordingTransport(ours))
    assert protocol.write_frame(b"one") is True
    assert recv_all(peer) == b"one"  # sent by the call, not left for the end of the loop turn
    assert protocol.write_frame(b"two", now=False) is True  # a backlog: to the buffer
    assert transport.written == b"two" and recv_all(peer) == b""
    assert protocol.write_frame(b"three") is True  # behind what is buffered, never before it
    assert transport.written == b"twothree" and recv_all(peer) == b""
    transport.written.clear()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 8192  # more than the socket takes at once
    assert protocol.write_frame(big) is True
    sent = recv_all(peer)
    assert 0 < len(sent) < len(big) and sent + transport.written == big  # the rest queued
    for task in protocol.tasks:
        task.cancel()
    ours.close()
    peer.close()


async def test_under_tls_frames_always_go_through_the_transport() -> None:
    ours, peer = socket.socketpair()
    protocol, transport = await accepted_protocol(RecordingTransport(ours, tls=True))
    assert protocol.scope["scheme"] == "wss"
    assert protocol.write_frame(b"one") is True
    assert transport.written == b"one"  # encrypted by the transport, not raw on the socket
    for task in protocol.tasks:
        task.cancel()
    ours.close()
    peer.close()
