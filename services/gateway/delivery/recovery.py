"""Catching up from the history stream: the relay after a reconnect, clients on resume.

One catch-up (``CatchUp``) serves both kinds of client: a Socket.IO session and an SSE
stream each give it a ``RecoverySink`` (send one signal / go live / answer).

Ordering argument (both paths): the emitter's ``position`` (epoch E, offset L) is the newest
signal this replica has emitted to rooms. Within E, everything at or below L is in the
stream (or trimmed); everything above it will be emitted to rooms, live or by the relay's
backfill after a reconnect. A resuming client is kept out of the rooms while it is sent the
stream up to a cutoff; it joins the rooms at a moment when nothing it has not been sent is
below the cutoff - with no await between that check and the join - so each signal reaches
it once, in order.

Epochs: a resume first reads the current epoch E* (its entries are tagged E*; were it to
change again meanwhile, the client's next resume is told so: cautious, never falsely
complete). If the emitter is in E*, the cutoff is L. If it has not met E* yet, it has
emitted none of E*'s entries, and will start after ``start_after(position, E*)``: live
signals of the old epoch still in flight stay below that point and the new epoch's entries
lie above it. So that is the cutoff, recomputed on every round like L.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import socketio
from pydantic import BaseModel, ConfigDict, Field

from common.constants import NAMESPACE, RECOVERY_EVENT, SIGNAL_EVENT
from common.logging import get_logger
from common.offsets import ZERO, Offset, Position, format_offset
from common.publish import Epoch
from gateway.delivery.emitter import SignalEmitter
from gateway.delivery.filters import SignalFilter
from gateway.delivery.history import History, start_after
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
        epoch = await self._history.epoch(None)
        self._emitter.track(Position(epoch.epoch, await self._history.tail()))

    async def check_epoch(self) -> None:
        """Notice an epoch change while idle (a FLUSHALL between signals); the relay adopts it."""
        epoch = await self._history.epoch(self._emitter.position)
        self._emitter.notice_epoch(epoch.epoch, "stats")

    async def __call__(self) -> None:
        tracked = self._emitter.position
        if tracked is None:
            return
        epoch = await self._history.epoch(tracked)
        after = start_after(tracked, epoch)
        if epoch.epoch != tracked.epoch:
            self._emitter.notice_epoch(epoch.epoch, "backfill")
            # Reset, so the new epoch's entries are not skipped as emitted: their ids can be lower.
            self._emitter.track(Position(epoch.epoch, after))
        else:
            await self._check_gap(after)
        count = 0
        async for offset, raw in self._history.read(after=after):
            count += await self._emitter.handle_history(epoch.epoch, offset, raw)
        self._metrics.backfilled.inc(count)
        if count:
            log.info("backfilled", signals=count, since=format_offset(after), epoch=epoch.epoch)

    async def _check_gap(self, after: Offset) -> None:
        stats = await self._history.stats()
        if stats is not None and not stats.covers(after):
            self._metrics.backfill_gaps.inc()
            log.warning("backfill_incomplete", since=format_offset(after))


RecoveryReason = Literal["trimmed", "epoch_changed", "epoch_unknown", "unavailable"]


class RecoveryAnswer(BaseModel):
    """The ``recovery`` event (Socket.IO and SSE): how a resume went (docs/delivery.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    complete: bool = Field(description="False: signals may be missing; resync from history.")
    recovered: int = Field(ge=0, description="Signals sent from the history.")
    since: str = Field(description="The offset the client resumed from.")
    reason: RecoveryReason | None = Field(description="Why it is incomplete; null when complete.")
    epoch: str | None = Field(description="The history's current epoch, when known.")


@dataclass
class Resume:
    """One client's catch-up: where it was, and how it went so far."""

    #: Who is catching up, for logs (a Socket.IO sid, or "sse").
    sid: str
    since: Position
    sent: int = 0
    epoch: str | None = None
    #: Why the answer is incomplete; None while nothing is known to be missing.
    reason: RecoveryReason | None = None

    def answer(self) -> dict[str, Any]:
        return RecoveryAnswer(
            complete=self.reason is None,
            recovered=self.sent,
            since=str(self.since),
            reason=self.reason,
            epoch=self.epoch,
        ).model_dump()


class RecoverySink(Protocol):
    """Where one catch-up goes: a Socket.IO session, or an SSE stream."""

    def wants(self, signal: dict[str, Any]) -> bool:
        """Whether the client's filter (as it is now: it may change meanwhile) takes it."""

    async def send(self, signal: dict[str, Any]) -> None:
        """One history signal, before the client is live."""

    def join(self) -> None:
        """Make the client live. Must not await: see the module docstring."""

    async def answer(self, answer: dict[str, Any]) -> None:
        """The ``recovery`` event, once the client is live."""


class CatchUp:
    """The one catch-up implementation behind Socket.IO and SSE resumes."""

    def __init__(self, history: History, emitter: SignalEmitter, metrics: GatewayMetrics) -> None:
        self._history = history
        self._emitter = emitter
        self._metrics = metrics

    async def run(self, resume: Resume, sink: RecoverySink) -> None:
        """Send the gap, make the client live, then answer; the sink is live in any case."""
        self._metrics.recovery_requests.inc()
        try:
            await self._catch_up(resume, sink)
        except Exception as exc:
            # Only after the history's own retries: Redis is really unavailable.
            log.warning("recovery_failed", sid=resume.sid, error=str(exc))
            resume.reason = "unavailable"
            sink.join()
        if resume.reason is not None:
            self._metrics.recovery_incomplete.inc()
        self._metrics.recovered.inc(resume.sent)
        await sink.answer(resume.answer())

    async def _catch_up(self, resume: Resume, sink: RecoverySink) -> None:
        epoch = await self._history.epoch(self._emitter.position)
        self._emitter.notice_epoch(epoch.epoch, "recovery")
        resume.epoch = epoch.epoch
        resume.reason = await self._reason(resume.since, epoch)
        # A bare offset has no epoch to check: replayed from, as before epochs existed.
        cursor = (
            resume.since.offset if resume.since.epoch is None else start_after(resume.since, epoch)
        )
        while True:
            cutoff = self._cutoff(epoch)
            if cutoff <= cursor:
                sink.join()  # no await since the cutoff: see the module docstring
                return
            async for offset, raw in self._history.read(after=cursor, until=cutoff):
                signal = self._emitter.history_signal(epoch.epoch, offset, raw)
                if signal is not None and sink.wants(signal):
                    await sink.send(signal)
                    resume.sent += 1
            cursor = cutoff

    async def _reason(self, since: Position, epoch: Epoch) -> RecoveryReason | None:
        if since.epoch is None:
            return "epoch_unknown"
        if since.epoch != epoch.epoch:
            return "epoch_changed"
        stats = await self._history.stats()
        return None if stats is not None and stats.covers(since.offset) else "trimmed"

    def _cutoff(self, epoch: Epoch) -> Offset:
        """Newest offset of ``epoch`` at or below which the emitter has emitted all it will."""
        tracked = self._emitter.position
        if tracked is None:
            return ZERO
        return tracked.offset if tracked.epoch == epoch.epoch else start_after(tracked, epoch)


class ClientRecovery:
    """Socket.IO resumes: the client stays out of the rooms until ``CatchUp`` joins it."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        history: History,
        emitter: SignalEmitter,
        metrics: GatewayMetrics,
    ) -> None:
        self._sio = sio
        self.catch_up = CatchUp(history, emitter, metrics)
        #: Every connected client's filter, live or catching up (clients/handlers.py sets it).
        self.filters: dict[str, SignalFilter] = {}
        #: Clients still catching up: in no room until ``join``.
        self.pending: set[str] = set()

    def start(self, sid: str, since: Position, wanted: SignalFilter) -> None:
        self.filters[sid] = wanted
        self.pending.add(sid)
        self._sio.start_background_task(
            self.catch_up.run, Resume(sid, since), _SocketSink(self, sid)
        )

    def join(self, sid: str) -> None:
        """Enter the rooms of the client's filter as it is now; never awaits (see above)."""
        self.pending.discard(sid)
        if sid not in self.filters or not self._sio.manager.is_connected(sid, NAMESPACE):
            return
        for room in self.filters[sid].rooms():
            self._sio.manager.basic_enter_room(sid, NAMESPACE, room)

    def wants(self, sid: str, signal: dict[str, Any]) -> bool:
        wanted = self.filters.get(sid)
        return wanted is not None and wanted.matches(signal)

    async def emit(self, event: str, data: dict[str, Any], sid: str) -> None:
        await self._sio.emit(event, data, to=sid, ignore_queue=True)

    def forget(self, sid: str) -> None:
        self.filters.pop(sid, None)
        self.pending.discard(sid)


class _SocketSink:
    __slots__ = ("_recovery", "_sid")

    def __init__(self, recovery: ClientRecovery, sid: str) -> None:
        self._recovery = recovery
        self._sid = sid

    def wants(self, signal: dict[str, Any]) -> bool:
        return self._recovery.wants(self._sid, signal)

    async def send(self, signal: dict[str, Any]) -> None:
        await self._recovery.emit(SIGNAL_EVENT, signal, self._sid)

    def join(self) -> None:
        self._recovery.join(self._sid)

    async def answer(self, answer: dict[str, Any]) -> None:
        await self._recovery.emit(RECOVERY_EVENT, answer, self._sid)
