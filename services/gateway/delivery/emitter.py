"""From one raw channel message to one emit to this replica's clients.

Every replica subscribes to the channel and emits with ``ignore_queue=True``: each client
is connected to exactly one replica, so each client gets each signal exactly once,
whatever the replica count. (A plain ``emit`` would also publish through the Redis
manager and deliver N copies; python-socketio#460.)

Signals that carry a history position arrive in offset order within an epoch; the emitter
remembers the newest one it emitted (``position``), which is what backfill and client
recovery resume from. A signal of another epoch means Redis lost the history: its offsets
start again (possibly lower, after a failover to a server with a slower clock), so it is
adopted, never skipped as already emitted.

In overload (gateway/delivery/overload.py) the relay hands over every signal waiting in
Redis at once (``handle_many``), and they go out as one batch: one write per client.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import socketio

from common.constants import OFFSET_FIELD, SIGNAL_EVENT
from common.logging import get_logger
from common.offsets import Offset, Position, format_position, parse_position
from common.schema import SignalRejected, parse_signal
from gateway.delivery.filters import target_rooms
from gateway.delivery.overload import LATEST_ONLY_ROOM, OverloadState, offset_age_s
from gateway.metrics import GatewayMetrics

log = get_logger(__name__)

#: Epochs remembered as already counted, so each change is counted once per replica.
EPOCHS_REMEMBERED = 16


class LiveStreams(Protocol):
    """Other live subscribers (SSE, gateway.delivery.sse): one call per emitted signal."""

    def offer(self, signal: dict[str, Any], position: Position | None) -> None: ...


class SignalEmitter:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        metrics: GatewayMetrics,
        max_message_bytes: int,
        *,
        clock: Callable[[], float] = time.time,
        streams: LiveStreams | None = None,
        overload: OverloadState | None = None,
    ) -> None:
        self._sio = sio
        self.overload = overload or OverloadState.from_settings(None, metrics)
        self._streams = streams
        self._metrics = metrics
        self._max_bytes = max_message_bytes
        self._clock = clock
        #: Newest history position emitted so far; None until the start-up tail is known.
        self.position: Position | None = None
        self._epochs_seen: deque[str] = deque(maxlen=EPOCHS_REMEMBERED)

    async def handle(self, raw: bytes) -> None:
        """A live message from the channel."""
        self._metrics.signals_received.inc()
        signal = self._parse(raw)
        if signal is not None:
            position = parse_position(signal.get(OFFSET_FIELD))
            age = self._age(position)
            if await self._deliver(signal, position, "live"):
                self.overload.observe(age, waiting=False)

    def batch_max(self) -> int:
        """How many waiting messages the relay may hand over at once (``handle_many``)."""
        return self.overload.batch_max()

    async def handle_many(self, raws: list[bytes]) -> None:
        """Live messages that were waiting together: one fan-out for all (overload)."""
        if len(raws) == 1:
            await self.handle(raws[0])
            return
        self._metrics.signals_received.inc(len(raws))
        items, oldest = [], None
        for raw in raws:
            signal = self._parse(raw)
            position = None if signal is None else parse_position(signal.get(OFFSET_FIELD))
            if signal is None or not self._admit(signal, position, "live"):
                continue
            age = self._age(position)
            oldest = age if oldest is None or (age is not None and age > oldest) else oldest
            key = (signal.get("symbol"), signal.get("strategy"))
            items.append((signal, target_rooms(signal), key))
        if items:
            await self._emit_batch(items)
        self.overload.observe(oldest, waiting=len(raws) >= self.overload.batch_max())

    async def _emit_batch(self, items: list[tuple[dict[str, Any], Any, Any]]) -> None:
        done = self._sio.manager.emit_batch(SIGNAL_EVENT, items, LATEST_ONLY_ROOM)
        if done is None:  # a packet the batch cannot frame: one by one, as usual
            for signal, rooms, _ in items:
                await self._sio.emit(SIGNAL_EVENT, signal, to=rooms, ignore_queue=True)
        else:
            self._metrics.latest_only_dropped.inc(done[1])
        self._metrics.coalesced.inc(len(items))
        for signal, _, _ in items:
            self._emitted(signal)

    def _age(self, position: Position | None) -> float | None:
        age = offset_age_s(None if position is None else position.offset, self._clock())
        if age is not None:
            self._metrics.fanout_age.observe(age)
        return age

    async def handle_history(self, epoch: str, offset: Offset, raw: bytes) -> bool:
        """A message read back from the history stream; True if it was emitted."""
        signal = self.history_signal(epoch, offset, raw)
        return signal is not None and await self._deliver(
            signal, Position(epoch, offset), "backfill"
        )

    def history_signal(self, epoch: str, offset: Offset, raw: bytes) -> dict[str, Any] | None:
        """A history entry as clients get it live: the stream keeps it without its position."""
        signal = self._parse(raw)
        return None if signal is None else {OFFSET_FIELD: format_position(epoch, offset), **signal}

    def track(self, position: Position) -> None:
        """Resume from ``position`` (start-up tail, or the start of a new epoch's backfill)."""
        if position.epoch is not None and not self._epochs_seen:
            self._epochs_seen.append(position.epoch)
        self.position = position

    def notice_epoch(self, epoch: str, seen_by: str) -> bool:
        """Count and log a change to ``epoch`` once, whichever path sees it first."""
        if epoch in self._epochs_seen:
            return False
        first = not self._epochs_seen
        self._epochs_seen.append(epoch)
        if first:
            return False  # the epoch at start-up is not a change
        self._metrics.history_epoch_changes.inc()
        previous = self.position.epoch if self.position else None
        log.warning("history_epoch_changed", previous=previous, epoch=epoch, seen_by=seen_by)
        return True

    def _parse(self, raw: bytes) -> dict[str, Any] | None:
        try:
            return parse_signal(raw, self._max_bytes)
        except SignalRejected as exc:
            self._metrics.signals_rejected.labels(exc.reason.value).inc()
            log.warning(
                "signal_rejected", reason=exc.reason.value, detail=exc.detail[:300], size=len(raw)
            )
            return None

    def _advance(self, new: Position, seen_by: str) -> bool:
        """Move to ``new``; False if it was already emitted (a backfill/live overlap)."""
        current = self.position
        if current is None or (new.epoch is not None and new.epoch != current.epoch):
            if new.epoch is not None:
                self.notice_epoch(new.epoch, seen_by)
            self.position = new
            return True
        if new.offset <= current.offset:
            return False
        # A bare offset (a publisher from before epochs) stays in the epoch being tracked.
        self.position = Position(current.epoch, new.offset)
        return True

    def _admit(self, signal: dict[str, Any], position: Position | None, how: str) -> bool:
        """Whether to emit ``signal`` (not already emitted); hands it to the streams."""
        if position is not None and not self._advance(position, how):
            self._metrics.signals_skipped.inc()
            return False
        if self._streams is not None:
            # Before any await: a stream that reads ``position`` as its resume cutoff and goes
            # live must find this signal either at or below the cutoff or still to come here.
            self._streams.offer(signal, position)
        return True

    async def _deliver(self, signal: dict[str, Any], position: Position | None, how: str) -> bool:
        if not self._admit(signal, position, how):
            return False
        # Rooms by the signal's symbol, strategy and side (gateway/delivery/filters.py).
        await self._sio.emit(SIGNAL_EVENT, signal, to=target_rooms(signal), ignore_queue=True)
        self._emitted(signal)
        return True

    def _emitted(self, signal: dict[str, Any]) -> None:
        self._metrics.signals_emitted.inc()
        ts = signal.get("ts")
        if isinstance(ts, int | float):
            self._metrics.relay_latency.observe(max(0.0, self._clock() - ts))
