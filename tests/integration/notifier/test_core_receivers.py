"""Receivers that misbehave, as raw TCP servers on loopback, against the real webhook
destination and delivery loop: headers that never finish (slowloris), endless and
compressed-bomb bodies, redirects, TLS that fails. Each ends in a bounded time as the docs
say: retried (timeouts, TLS) or permanent (3xx), never unbounded memory."""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from notifier.consumer import Entry
from notifier.delivery import SEND_TIMEOUT_MARGIN_S
from notifier.destinations import _http
from notifier.destinations.base import DeliveryError
from notifier.destinations.webhook import WebhookConfig, WebhookDestination
from tests.integration.notifier.dest_common import sample_delivery
from tests.support.receivers_smtp import self_signed_cert

Handler = Callable[[socket.socket], None]


@contextmanager
def raw_server(handle: Handler, read_first: bool = True) -> Iterator[str]:
    """Accept connections on 127.0.0.1 and hand each to ``handle`` in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            args = (handle, conn, read_first)
            threading.Thread(target=_guarded, args=args, daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _guarded(handle: Handler, conn: socket.socket, read_first: bool) -> None:
    with conn:
        try:
            if read_first:
                conn.recv(65536)  # the request (small: one signal)
            handle(conn)
        except OSError:
            pass  # the client went away: what these servers are for


def slowloris(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(200):  # a header byte every 0.3 s: each read succeeds, none finishes
        conn.sendall(b"X")
        time.sleep(0.3)


def endless_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
    chunk = b"0" * 65536
    for _ in range(200_000):
        conn.sendall(chunk)


def _bomb(inflated: int = 200_000_000) -> bytes:
    """gzip of ``inflated`` zero bytes (about 200 KB), made without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(1_000_000)
    parts = [packer.compress(zeros) for _ in range(inflated // len(zeros))]
    return b"".join([*parts, packer.flush()])


BOMB = _bomb()


def gzip_bomb(conn: socket.socket) -> None:
    body = BOMB
    head = (
        f"HTTP/1.1 400 Bad Request\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    conn.sendall(head.encode() + body)


def redirect(conn: socket.socket) -> None:
    conn.sendall(
        b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n"
    )


def destination(url: str, timeout_s: float = 1.0) -> WebhookDestination:
    config = WebhookConfig.model_validate(
        {"name": "odd", "url": url, "secret": {"env": "QS_ODD_SECRET"}, "timeout_s": timeout_s}
    )
    return WebhookDestination(config)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QS_ODD_SECRET", "s")


async def test_headers_that_never_finish_are_cut_off_by_the_loops_deadline() -> None:
    """httpx's read timeout is per read, so a byte every 0.3 s never trips a 1 s timeout:
    the delivery loop's own deadline (timeout_s + margin) ends the attempt, retryable."""
    from notifier.delivery import DestinationWorker

    with raw_server(slowloris) as url:
        dest = destination(url + "/hook", timeout_s=1.0)
        worker = DestinationWorker.__new__(DestinationWorker)
        worker.destination, worker.config, worker.name = dest, dest.config, "odd"
        started = time.monotonic()
        error = await worker._attempt(sample_delivery())
        took = time.monotonic() - started
        await dest.aclose()
    assert error is not None and not error.permanent
    assert "no answer within 1.0 s" in str(error)
    assert took < 1.0 + SEND_TIMEOUT_MARGIN_S + 1.0


async def test_an_endless_body_is_not_read_into_memory() -> None:
    with raw_server(endless_body) as url:
        dest = destination(url + "/hook", timeout_s=10.0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        await asyncio.wait_for(dest.send(sample_delivery()), 10)  # a 200: accepted
        took = time.monotonic() - started
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        await dest.aclose()
    assert took < 3, took
    assert grown_kb < 50_000, grown_kb  # the old code read it all (or until the deadline)


async def test_a_compressed_bomb_is_read_only_up_to_the_cap() -> None:
    with raw_server(gzip_bomb) as url:
        dest = destination(url + "/hook", timeout_s=10.0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(DeliveryError) as info:
            await asyncio.wait_for(dest.send(sample_delivery()), 10)
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        await dest.aclose()
    assert info.value.permanent and "HTTP 400" in str(info.value)
    assert grown_kb < 50_000, grown_kb  # 200 MB inflated on the old code


async def test_a_redirect_is_permanent_and_not_followed() -> None:
    with raw_server(redirect) as url:
        dest = destination(url + "/hook")
        with pytest.raises(DeliveryError) as info:
            await dest.send(sample_delivery())
        await dest.aclose()
    assert info.value.permanent and "HTTP 301" in str(info.value)


async def test_tls_that_fails_is_retried() -> None:
    """https:// to a server that speaks plain HTTP (and one that closes at once): a
    transport error, retryable, one line, no traceback."""
    with raw_server(redirect) as url:
        dest = destination(url.replace("http://", "https://") + "/hook")
        with pytest.raises(DeliveryError) as info:
            await dest.send(sample_delivery())
        await dest.aclose()
    assert not info.value.permanent
    assert "\n" not in str(info.value)


def test_the_cap_is_small() -> None:
    assert _http.MAX_BODY_BYTES <= 1024 * 1024
    assert Entry  # imported for the worker's type: keeps the import honest


def gzipped_refusal(conn: socket.socket) -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = packer.compress(b"invalid_payload: gzipped") + packer.flush()
    head = (
        f"HTTP/1.1 400 Bad Request\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    conn.sendall(head.encode() + body)


async def test_a_compressed_refusal_is_still_read() -> None:
    with raw_server(gzipped_refusal) as url:
        dest = destination(url + "/hook")
        with pytest.raises(DeliveryError) as info:
            await dest.send(sample_delivery())
        await dest.aclose()
    assert "HTTP 400: invalid_payload: gzipped" in str(info.value)


async def test_a_certificate_that_does_not_verify_is_retried(tmp_path: Path) -> None:
    """A TLS receiver whose certificate no public CA signed: the handshake fails in the
    client, a retryable transport error naming the cause, one line."""
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def tls_then_200(conn: socket.socket) -> None:
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (ssl.SSLError, OSError):
            pass  # the client refused our certificate: expected

    with raw_server(tls_then_200, read_first=False) as url:
        dest = destination(url.replace("http://", "https://") + "/hook")
        with pytest.raises(DeliveryError) as info:
            await dest.send(sample_delivery())
        await dest.aclose()
    assert not info.value.permanent
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) and "\n" not in str(info.value)
