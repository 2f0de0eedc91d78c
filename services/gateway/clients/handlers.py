"""Socket.IO connection handlers: connect (auth, resume), subscribe, unsubscribe.

A client's filter (gateway/delivery/filters.py) is its rooms: subscribe adds values to
it, unsubscribe removes them (with nothing: everything again), and each ack says what is
in force: ``{"ok": true, "symbols": [...], "strategies": [...], "types": [...]}``.
"""

from __future__ import annotations

from typing import Any

import socketio

from common.constants import AUTH_REFRESH_EVENT, SUBSCRIBE_EVENT, UNSUBSCRIBE_EVENT
from common.logging import get_logger
from gateway.clients.payloads import FilterAck, Refusal
from gateway.clients.requests import SymbolRequestError, parse_filter, parse_resume
from gateway.clients.sessions import AuthSessions
from gateway.delivery.filters import MAX_FILTER_ROOMS, SignalFilter
from gateway.delivery.overload import LATEST_ONLY_ROOM, wants_latest_only
from gateway.delivery.recovery import ClientRecovery
from gateway.edge.limits import EventGuard
from gateway.metrics import GatewayMetrics
from gateway.wire.engine import EngineConnections, end_connection
from gateway.wire.environ import trim_environ

log = get_logger(__name__)


class SocketHandlers:
    """Connection, subscription and resume handling for one Socket.IO server."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        metrics: GatewayMetrics,
        recovery: ClientRecovery,
        sessions: AuthSessions,
        events: EventGuard | None = None,
    ) -> None:
        self.sio = sio
        self.metrics = metrics
        self.recovery = recovery
        self.sessions = sessions
        sio.on("connect", self.connect)
        sio.on("disconnect", self.disconnect)
        self.events = events
        for event, handler in (
            (SUBSCRIBE_EVENT, self.subscribe),
            (UNSUBSCRIBE_EVENT, self.unsubscribe),
            (AUTH_REFRESH_EVENT, self.auth_refresh),
        ):
            sio.on(event, events.wrap(handler) if events else handler)
        if events is not None:
            # Unknown event names spend tokens too, so they cannot flood for free.
            sio.on("*", events.unknown_event)
            # Buckets per Engine.IO connection: a second CONNECT on it gets no fresh one.
            events.bind(self._kick, EngineConnections(sio))

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        trim_environ(environ)
        try:
            since, asked = parse_resume(auth)
        except SymbolRequestError as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        self.sessions.authenticate(sid, auth)
        wanted = self._check(sid, asked)
        if isinstance(wanted, str):
            self.sessions.forget(sid)
            raise socketio.exceptions.ConnectionRefusedError(wanted)
        self.metrics.connected_clients.inc()
        if wants_latest_only(auth, environ.get("QUERY_STRING", "")):
            await self.sio.enter_room(sid, LATEST_ONLY_ROOM)  # gateway/delivery/overload.py
        if since is not None:
            # Out of the rooms until caught up; recovery joins them (gateway/delivery/recovery.py).
            self.recovery.start(sid, since, wanted)
            return
        await self._set(sid, wanted)

    async def disconnect(self, sid: str, *_reason: Any) -> None:
        self.recovery.forget(sid)
        self.sessions.forget(sid)
        if self.events is not None:
            self.events.forget(sid)
        self.metrics.connected_clients.dec()

    async def _kick(self, sid: str) -> None:
        # The whole connection: a Socket.IO disconnect alone leaves the WebSocket open.
        await end_connection(self.sio, sid)

    async def subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        try:
            asked = parse_filter(data)
        except SymbolRequestError as exc:
            return Refusal(error=str(exc)).model_dump()
        wanted = self._check(sid, self._filter(sid).add(asked), asked)
        if isinstance(wanted, str):
            return Refusal(error=wanted).model_dump()
        return FilterAck(**await self._set(sid, wanted)).model_dump()

    async def auth_refresh(self, sid: str, data: Any = None) -> dict[str, Any]:
        result = await self.sessions.refresh(sid, data)
        if result["ok"]:
            # Claims may have narrowed: keep only what the new token allows.
            await self._set(sid, self._filter(sid).within(self.sessions.allowed(sid)))
        return result

    async def unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Remove values from the filter; with nothing, remove all (every signal again)."""
        try:
            wanted = self._filter(sid).remove(parse_filter(data)) if data else SignalFilter()
        except SymbolRequestError as exc:
            return Refusal(error=str(exc)).model_dump()
        # Fewer values can still mean more rooms (a dimension left empty means any).
        checked = self._check(sid, wanted)
        if isinstance(checked, str):
            return Refusal(error=checked).model_dump()
        return FilterAck(**await self._set(sid, checked)).model_dump()

    def _filter(self, sid: str) -> SignalFilter:
        return self.recovery.filters.get(sid, SignalFilter())

    def _check(
        self, sid: str, wanted: SignalFilter, asked: SignalFilter | None = None
    ) -> SignalFilter | str:
        """``wanted`` within the client's token, or why it is refused."""
        if refused := self.sessions.refused(sid, sorted((asked or wanted).symbols)):
            return f"not allowed: {', '.join(refused[:10])}"
        allowed = self.sessions.allowed(sid)
        wanted = wanted.within(allowed)
        # A token's own symbols never count against the bound: they needed a room each before.
        limit = max(MAX_FILTER_ROOMS, len(allowed or ()))
        if (rooms := wanted.room_count()) > limit:
            return f"filter too wide: symbols x strategies x types = {rooms} rooms, at most {limit}"
        return wanted

    async def _set(self, sid: str, wanted: SignalFilter) -> dict[str, list[str]]:
        """Make ``wanted`` the client's filter and rooms; an empty one is room ``all``."""
        current = self.recovery.filters.get(sid)
        self.recovery.filters[sid] = wanted
        if sid not in self.recovery.pending:
            before = [] if current is None else current.rooms()
            after = wanted.rooms()
            # New rooms first: a signal both filters take is never missed in between.
            for room in set(after).difference(before):
                await self.sio.enter_room(sid, room)
            for room in set(before).difference(after):
                await self.sio.leave_room(sid, room)
        return wanted.describe()
