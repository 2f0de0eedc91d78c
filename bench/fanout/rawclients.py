"""A cheap load generator: many Socket.IO clients over raw WebSockets, one process.

    python bench/fanout/rawclients.py --url 127.0.0.1:8000 --bind 127.0.0.2 --clients 5000

Each client is an ``asyncio.Protocol`` (no task, no library client): it sends the WebSocket
upgrade for ``/socket.io/?EIO=4&transport=websocket``, reads Engine.IO's OPEN, sends the
Socket.IO CONNECT (``40``), answers every PING (``2``) with a PONG (``3``) and records each
``new_signal`` event (its ``seq`` and publish time ``ts``). About 1 KB per client here, so
one process holds thousands; ``--bind`` picks the loopback source address, since one
address has about 28,000 ephemeral ports and a process at most 20,000 files (TOOLING.md).

The official clients are checked alongside (bench/memory_per_conn.py): this one only
needs to be correct enough that a server cannot tell it from one.

Control on stdin, one command a line; answers are JSON lines on stdout (like
node/loadgen.js): ``connect`` (opens the clients: ``connected`` with counts and seconds),
``start N`` (reset, expect seqs 0..N-1), ``count``, ``report PATH`` (latencies in ms go to
PATH as float64, the rest in the answer), ``quit``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import json
import os
import resource
import sys
import time
from typing import Any

import orjson
import uvloop

ZERO_MASK = b"\x00\x00\x00\x00"  # a client must mask; a zero key leaves the bytes as they are
KEY = base64.b64encode(b"quantum-signals!").decode()


def client_frame(text: str) -> bytes:
    """A masked (with the zero key) text frame, for payloads under 126 bytes."""
    data = text.encode()
    return bytes((0x81, 0x80 | len(data))) + ZERO_MASK + data


PONG = client_frame("3")
SIO_CONNECT = client_frame("40")


class Stats:
    def __init__(self) -> None:
        self.expected = 0
        self.recording = False
        self.latencies = array.array("d")
        self.deliveries = self.warmups = self.duplicates = self.out_of_order = 0
        self.unexpected = self.disconnects = 0
        self.first = self.last = 0.0
        self.connected = self.refused = self.failed = 0

    def signal(self, client: Client, payload: dict[str, Any]) -> None:
        now = time.time()
        seq = payload.get("seq")
        if not isinstance(seq, int) or seq < 0:
            self.warmups += 1
            return
        if not self.recording or seq >= self.expected:
            self.unexpected += 1
            return
        if client.seen[seq]:
            self.duplicates += 1
            return
        client.seen[seq] = 1
        if seq < client.max_seq:
            self.out_of_order += 1
        client.max_seq = max(client.max_seq, seq)
        self.deliveries += 1
        self.latencies.append((now - float(payload["ts"])) * 1000)
        self.first = self.first or now
        self.last = now


class Client(asyncio.Protocol):
    __slots__ = ("buf", "done", "max_seq", "open", "seen", "stats", "transport", "upgraded")

    def __init__(self, stats: Stats, done: asyncio.Future[str]) -> None:
        self.stats, self.done = stats, done
        self.buf = bytearray()
        self.upgraded = self.open = False
        self.transport: asyncio.Transport | None = None
        self.seen = bytearray(0)
        self.max_seq = -1

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open:
            self.stats.disconnects += 1
            self.open = False
        if not self.done.done():
            self.done.set_result("closed before connect")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            del self.buf[: end + 4]
            if b" 101 " not in status:
                self._fail("refused" if b" 503 " in status else status.decode(errors="replace"))
                return
            self.upgraded = True
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            size, head = buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    return
                size, head = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, head = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < head + size:
                return
            opcode, payload = buf[0] & 0x0F, bytes(buf[head : head + size])
            del buf[: head + size]
            if opcode == 1:
                self._text(payload.decode())
            elif opcode == 8:
                self._fail("closed by server")

    def _text(self, text: str) -> None:
        assert self.transport is not None
        if text == "2":
            self.transport.write(PONG)
        elif text.startswith("42"):
            event = orjson.loads(text[2:])
            if event and event[0] == "new_signal":
                self.stats.signal(self, event[1])
        elif text.startswith("0"):
            self.transport.write(SIO_CONNECT)
        elif text.startswith("40") and not self.open:
            self.open = True
            self.seen = bytearray(self.stats.expected)
            if not self.done.done():
                self.done.set_result("ok")
        elif text.startswith("44"):
            self._fail("connect refused: " + text)

    def _fail(self, why: str) -> None:
        if not self.done.done():
            self.done.set_result(why)
        if self.transport is not None:
            self.transport.close()


def upgrade_request(host: str, port: int) -> bytes:
    return (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        host, _, port = args.url.rpartition(":")
        self.host, self.port = host, int(port)
        self.stats = Stats()
        self.clients: list[Client] = []

    async def one(self, gate: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        async with gate:
            done: asyncio.Future[str] = loop.create_future()
            try:
                transport, client = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: Client(self.stats, done),
                        self.host,
                        self.port,
                        local_addr=(self.args.bind, 0),
                    ),
                    self.args.timeout,
                )
                transport.write(upgrade_request(self.host, self.port))
                outcome = await asyncio.wait_for(done, self.args.timeout)
            except (OSError, TimeoutError) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
        if outcome == "ok":
            self.stats.connected += 1
            self.clients.append(client)
        elif outcome == "refused":
            self.stats.refused += 1
        else:
            self.stats.failed += 1
            if self.stats.failed <= 3:
                print(f"client failed: {outcome}", file=sys.stderr, flush=True)

    async def connect(self) -> dict[str, Any]:
        gate = asyncio.Semaphore(self.args.concurrency)
        started = time.monotonic()
        await asyncio.gather(*(self.one(gate) for _ in range(self.args.clients)))
        s = self.stats
        return {
            "event": "connected",
            "clients": s.connected,
            "refused": s.refused,
            "failed": s.failed,
            "seconds": time.monotonic() - started,
        }

    def start(self, expected: int) -> dict[str, Any]:
        s = self.stats
        s.expected, s.recording, s.latencies = expected, True, array.array("d")
        s.deliveries = s.duplicates = s.out_of_order = s.unexpected = s.disconnects = 0
        s.first = s.last = 0.0
        for c in self.clients:
            c.seen, c.max_seq = bytearray(expected), -1
        return {"event": "started"}

    def report(self, path: str) -> dict[str, Any]:
        s = self.stats
        with open(path, "wb") as out:
            s.latencies.tofile(out)
        missing = sum(c.seen.count(0) for c in self.clients)
        got_all = sum(1 for c in self.clients if c.open and not c.seen.count(0))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "event": "report",
            "clients": len(self.clients),
            "open": sum(1 for c in self.clients if c.open),
            "deliveries": s.deliveries,
            "duplicates": s.duplicates,
            "missing": missing,
            "out_of_order": s.out_of_order,
            "unexpected": s.unexpected,
            "disconnects": s.disconnects,
            "clients_with_every_signal": got_all,
            "first_s": s.first,
            "last_s": s.last,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }

    def counts(self) -> dict[str, Any]:
        s = self.stats
        return {"event": "count", "deliveries": s.deliveries, "warmups": s.warmups}

    def close(self) -> None:
        for c in self.clients:
            if c.transport is not None:
                c.transport.abort()


async def control(load: Load) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        cmd, _, arg = line.partition(" ")
        if cmd == "quit":
            break
        if cmd == "connect":
            answer = await load.connect()
        elif cmd == "start":
            answer = load.start(int(arg))
        elif cmd == "count":
            answer = load.counts()
        elif cmd == "report":
            answer = load.report(arg)
        else:
            answer = {"event": "error", "message": f"unknown command {cmd!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    load.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="host:port of the server")
    parser.add_argument("--bind", default="127.0.0.1", help="loopback source address")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per handshake")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="exit after this long")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load = Load(args)

    async def bounded() -> None:
        try:
            await asyncio.wait_for(control(load), args.max_seconds)
        except TimeoutError:
            load.close()

    uvloop.run(bounded())
    os._exit(0)  # do not wait for thousands of transports to close one by one


if __name__ == "__main__":
    main()
