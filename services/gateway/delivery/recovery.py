"""Catching up from the history stream: the relay after a reconnect, clients on resume.

Ordering argument (both paths): the fan-out's ``last_offset`` is the highest offset this
replica has emitted to rooms. Everything at or below it is in the stream; everything above
it will be emitted live. A resuming client is kept out of the rooms while it is sent the
stream up to ``last_offset``; it joins the rooms at a moment when nothing it has not been
sent is below ``last_offset`` - with no await between that check and the join - so each
signal reaches it once, in order.
"""

from __future__ import annotations

from typing import Any

import socketio

from common.constants import (
    ALL_SIGNALS_ROOM,
    NAMESPACE,
    RECOVERY_EVENT,
    SIGNAL_EVENT,
    symbol_room,
)
from common.logging import get_logger
from common.schema import Offset, format_offset
from gateway.delivery.emitter import SignalEmitter
from gateway.delivery.history import History
from gateway.metrics import GatewayMetrics

log = get_logger(__name__)


class Backfill:
    """Relay hook: after each (re)subscribe, emit what was published while away."""

    def __init__(self, history: History, emitter: SignalEmitter, metrics: GatewayMetrics) -> None:
        self._history = history
        self._emitter = emitter
        self._metrics = metrics

    async def prime(self) -> None:
        """Start from the stream's current end, so the first subscribe backfills the gap."""
        self._emitter.last_offset = await self._history.tail()

    async def __call__(self) -> None:
        since = self._emitter.last_offset
        if since is None:
            return
        stats = await self._history.stats()
        if stats is not None and not stats.covers(since):
            self._metrics.backfill_gaps.inc()
            log.warning("backfill_incomplete", since=format_offset(since))
        count = 0
        async for offset, raw in self._history.read(after=since):
            count += await self._emitter.handle_history(offset, raw)
        self._metrics.backfilled.inc(count)
        if count:
            log.info("backfilled", signals=count, since=format_offset(since))


def wants(signal: dict[str, Any], symbols: set[str]) -> bool:
    symbol = signal.get("symbol")
    return not symbols or not isinstance(symbol, str) or symbol in symbols


class ClientRecovery:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        history: History,
        emitter: SignalEmitter,
        metrics: GatewayMetrics,
    ) -> None:
        self._sio = sio
        self._history = history
        self._emitter = emitter
        self._metrics = metrics
        #: Clients still catching up -> the symbols they will be subscribed to.
        self.pending: dict[str, set[str]] = {}

    def start(self, sid: str, since: Offset, symbols: set[str]) -> None:
        self.pending[sid] = set(symbols)
        self._metrics.recovery_requests.inc()
        self._sio.start_background_task(self._run, sid, since)

    async def _run(self, sid: str, since: Offset) -> None:
        try:
            complete, sent = await self._catch_up(sid, since)
        except Exception as exc:
            log.warning("recovery_failed", sid=sid, error=str(exc))
            complete, sent = False, 0
            self._join(sid)
        if not complete:
            self._metrics.recovery_incomplete.inc()
        self._metrics.recovered.inc(sent)
        await self._sio.emit(
            RECOVERY_EVENT,
            {"complete": complete, "recovered": sent, "since": format_offset(since)},
            to=sid,
            ignore_queue=True,
        )

    async def _catch_up(self, sid: str, since: Offset) -> tuple[bool, int]:
        stats = await self._history.stats()
        complete = stats is not None and stats.covers(since)
        cursor, sent = since, 0
        while True:
            cutoff = self._emitter.last_offset
            if cutoff is None or cutoff <= cursor:
                self._join(sid)  # no await since the check: see the module docstring
                return complete, sent
            async for offset, raw in self._history.read(after=cursor, until=cutoff):
                signal = self._emitter.history_signal(offset, raw)
                if signal is not None and wants(signal, self.pending.get(sid, set())):
                    await self._sio.emit(SIGNAL_EVENT, signal, to=sid, ignore_queue=True)
                    sent += 1
            cursor = cutoff

    def _join(self, sid: str) -> None:
        symbols = self.pending.pop(sid, set())
        if not self._sio.manager.is_connected(sid, NAMESPACE):
            return
        rooms = [symbol_room(s) for s in symbols] or [ALL_SIGNALS_ROOM]
        for room in rooms:
            self._sio.manager.basic_enter_room(sid, NAMESPACE, room)

    def forget(self, sid: str) -> None:
        self.pending.pop(sid, None)
