"""SignalStream: signals from any of several gateways, resumed after every disconnect.

The resume protocol is the gateway's (docs/delivery.md): each connect sends
``auth: {"offset": <last offset>, "symbols": [...], "token": <JWT>}``; the gateway replays
the gap, then sends ``recovery``. This class only keeps the offset, picks the next URL, and
turns events into typed objects. It de-duplicates nothing (the gateway sends each signal
once) but never yields a position at or before the last one within an epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import socketio

from qs_client.errors import AuthRefused, GatewayUnreachable
from qs_client.models import Recovery, Signal
from qs_client.offset_file import OffsetFile
from qs_client.offsets import Position, is_newer, parse_position

log = logging.getLogger("qs_client")

TokenSource = str | Callable[[], str | Awaitable[str]] | None
Item = Signal | Recovery

#: Reasons the gateway gives when it refuses a token (docs/security.md).
AUTH_REASONS = frozenset(
    {
        "missing_token",
        "malformed_token",
        "token_expired",
        "token_not_yet_valid",
        "bad_signature",
        "algorithm_not_allowed",
        "unknown_key",
        "wrong_audience",
        "wrong_issuer",
        "missing_claim",
        "invalid_claims",
    }
)
_END = object()


class SignalStream:
    """``async with SignalStream(urls) as s: async for item in s`` -> Signal | Recovery.

    ``offset``: where to resume from (``offset_file``'s content wins when the file exists).
    ``token``: a JWT, or a callable (sync or async) returning a fresh one; it is called on
    every connect and when the gateway sends ``auth_expiring``.
    ``give_up_after_s``: raise GatewayUnreachable after this long without a connection
    (None: keep trying). A token refused twice in a row raises AuthRefused.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        symbols: Sequence[str] | None = None,
        offset: str | None = None,
        offset_file: str | os.PathLike[str] | None = None,
        token: TokenSource = None,
        backoff_max_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        give_up_after_s: float | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one gateway URL is needed")
        self._urls = list(urls)
        self._symbols = list(symbols) if symbols else None
        self._token = token
        self._backoff_max_s = backoff_max_s
        self._connect_timeout_s = connect_timeout_s
        self._give_up_after_s = give_up_after_s
        self._store = OffsetFile(offset_file) if offset_file is not None else None
        start = self._store.load() if self._store is not None else None
        if start is None and offset is not None:
            start = parse_position(offset)
            if start is None:
                raise ValueError(f"not a history offset: {offset!r}")
        self._last: Position | None = start  # newest position received
        self._yielded: str | None = str(start) if start else None
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._resuming = False
        self.url: str | None = None  #: the gateway connected to now, if any
        self.connects = 0

    @property
    def offset(self) -> str | None:
        """The offset of the last signal yielded (or the one the stream started from)."""
        return self._yielded

    async def __aenter__(self) -> SignalStream:
        self._task = asyncio.create_task(self._run(), name="qs-signal-stream")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._queue.put_nowait(_END)

    def __aiter__(self) -> SignalStream:
        return self

    async def __anext__(self) -> Item:
        if self._task is None:
            raise RuntimeError("use 'async with SignalStream(...)' before iterating")
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # stays ended
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, Signal | Recovery)
        if isinstance(item, Signal) and item.offset is not None:
            self._yielded = item.offset
            if self._store is not None:
                self._store.save(item.offset)
        return item

    # -- connection loop -------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._connect_forever()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, raised from __anext__
            self._queue.put_nowait(exc)

    async def _connect_forever(self) -> None:
        failures = auth_refusals = 0
        since_ok = time.monotonic()
        for attempt in range(1 << 62):
            url = self._urls[attempt % len(self._urls)]
            refusal = await self._session(url)
            if refusal is None:  # connected, then the connection ended
                failures = auth_refusals = 0
                since_ok = time.monotonic()
                continue  # straight to the next URL: this one just failed us
            log.info("qs_connect_failed url=%s reason=%s", url, refusal)
            if refusal in AUTH_REASONS:
                auth_refusals += 1
                if auth_refusals > 1:  # a fresh token was refused too
                    raise AuthRefused(refusal)
            failures += 1
            waited = time.monotonic() - since_ok
            if self._give_up_after_s is not None and waited > self._give_up_after_s:
                raise GatewayUnreachable(f"no gateway answered in {waited:.1f}s: {refusal}")
            if failures >= len(self._urls):  # every URL failed once: wait before more
                await asyncio.sleep(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        # Capped exponential with jitter, so many clients of a dead gateway spread out.
        ceiling = min(self._backoff_max_s, 0.1 * 2 ** min(failures, 16))
        return random.uniform(ceiling / 2, ceiling)

    async def _session(self, url: str) -> str | None:
        """One connection: None once it has ended, else why it could not be made."""
        # handle_sigint=False: a library must not take over Ctrl-C (engine.io's handler
        # cancels every task in the process, so asyncio.run never sees a KeyboardInterrupt).
        client = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, logger=False, engineio_logger=False
        )
        ended = asyncio.Event()
        refusals: list[str] = []
        client.on("new_signal", self._on_signal)
        client.on("recovery", self._on_recovery)

        async def on_auth_expiring(data: object) -> None:
            await self._refresh(client)

        client.on("auth_expiring", on_auth_expiring)
        client.on("connect_error", lambda data: refusals.append(_reason(data)))
        client.on("disconnect", lambda *_: ended.set())
        try:
            try:
                await client.connect(
                    url,
                    auth=self._auth,
                    transports=["websocket"],
                    wait_timeout=self._connect_timeout_s,
                )
            except Exception as exc:  # refused, unreachable, timed out: try another URL
                return refusals[-1] if refusals else str(exc) or type(exc).__name__
            self.url, self.connects = url, self.connects + 1
            await ended.wait()
            return None
        finally:
            self.url = None
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def _auth(self) -> dict[str, Any]:
        # python-socketio calls this on every connect: always the newest position.
        auth: dict[str, Any] = {}
        if self._last is not None:
            auth["offset"] = str(self._last)
        self._resuming = self._last is not None
        if self._symbols:
            auth["symbols"] = self._symbols
        token = await self._fresh_token()
        if token is not None:
            auth["token"] = token
        return auth

    async def _fresh_token(self) -> str | None:
        if self._token is None or isinstance(self._token, str):
            return self._token
        token = self._token()
        return await token if inspect.isawaitable(token) else token

    async def _refresh(self, client: socketio.AsyncClient) -> None:
        if not callable(self._token):
            log.warning("qs_auth_expiring: no token callable to refresh with")
            return
        try:
            token = await self._fresh_token()
            ack = await client.call("auth_refresh", {"token": token}, timeout=10)
        except Exception as exc:  # the gateway ends the session; the next connect retries
            log.warning("qs_auth_refresh_failed error=%s", exc)
            return
        if not (isinstance(ack, dict) and ack.get("ok")):
            log.warning("qs_auth_refresh_refused ack=%s", ack)

    # -- events -> items -------------------------------------------------------------

    def _on_signal(self, data: object) -> None:
        try:
            signal = Signal.from_dict(data)
        except ValueError as exc:
            log.warning("qs_bad_signal error=%s", exc)
            return
        position = parse_position(signal.offset)
        if position is not None:
            if not is_newer(position, self._last):
                return  # at or before what was already yielded: never go back
            last = self._last
            if last is not None and last.epoch != position.epoch and not self._resuming:
                # Seen live: Redis lost the history; signals around the change may be missing.
                notice = Recovery(False, 0, "epoch_changed", position.epoch, str(last))
                self._queue.put_nowait(notice)
            self._last = position
        self._queue.put_nowait(signal)

    def _on_recovery(self, data: object) -> None:
        self._resuming = False
        try:
            self._queue.put_nowait(Recovery.from_dict(data))
        except ValueError as exc:
            log.warning("qs_bad_recovery error=%s", exc)


def _reason(data: object) -> str:
    if isinstance(data, dict):
        return str(data.get("message", data))
    return str(data)
