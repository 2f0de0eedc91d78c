"""Socket.IO connection handlers: connect (auth, resume), subscribe, unsubscribe."""

from __future__ import annotations

from typing import Any

import socketio

from common.constants import (
    ALL_SIGNALS_ROOM,
    AUTH_REFRESH_EVENT,
    NAMESPACE,
    SUBSCRIBE_EVENT,
    SYMBOL_ROOM_PREFIX,
    UNSUBSCRIBE_EVENT,
    symbol_room,
)
from common.logging import get_logger
from gateway.clients.requests import SymbolRequestError, parse_resume, parse_symbols
from gateway.clients.sessions import AuthSessions
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
            since, symbols = parse_resume(auth)
        except SymbolRequestError as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        self.sessions.authenticate(sid, auth)
        if refused := self.sessions.refused(sid, symbols):
            self.sessions.forget(sid)
            raise socketio.exceptions.ConnectionRefusedError(f"not allowed: {refused[:10]}")
        self.metrics.connected_clients.inc()
        if since is not None:
            # Out of the rooms until caught up; recovery joins them (gateway/delivery/recovery.py).
            self.recovery.start(sid, since, set(symbols) or self._default(sid))
            return
        await self._set(sid, set(symbols))

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
            symbols = parse_symbols(data)
        except SymbolRequestError as exc:
            return {"ok": False, "error": str(exc)}
        if refused := self.sessions.refused(sid, symbols):
            return {"ok": False, "error": f"not allowed: {', '.join(refused[:10])}"}
        return {"ok": True, "symbols": await self._set(sid, set(self._symbols(sid)) | set(symbols))}

    async def auth_refresh(self, sid: str, data: Any = None) -> dict[str, Any]:
        result = await self.sessions.refresh(sid, data)
        if result["ok"]:
            # Claims may have narrowed: keep only what the new token allows.
            allowed = self.sessions.allowed(sid)
            keep = {s for s in self._symbols(sid) if allowed is None or s in allowed}
            await self._set(sid, keep)
        return result

    async def unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        try:
            symbols = set(parse_symbols(data)) if data else set(self._symbols(sid))
        except SymbolRequestError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "symbols": await self._set(sid, set(self._symbols(sid)) - symbols)}

    def _symbols(self, sid: str) -> list[str]:
        if sid in self.recovery.pending:
            return sorted(self.recovery.pending[sid])
        rooms = self.sio.rooms(sid, namespace=NAMESPACE)
        prefix = len(SYMBOL_ROOM_PREFIX)
        return sorted(r[prefix:] for r in rooms if r.startswith(SYMBOL_ROOM_PREFIX))

    def _default(self, sid: str) -> set[str]:
        """Symbols of a client that asked for none: all (empty), or all its token allows."""
        allowed = self.sessions.allowed(sid)
        return set() if allowed is None else set(allowed)

    async def _set(self, sid: str, wanted: set[str]) -> list[str]:
        """Make ``wanted`` the client's symbols; none means every signal (room ``all``)."""
        wanted = wanted or self._default(sid)
        if sid in self.recovery.pending:
            self.recovery.pending[sid] = wanted
            return sorted(wanted)
        current = set(self._symbols(sid))
        for symbol in current - wanted:
            await self.sio.leave_room(sid, symbol_room(symbol))
        for symbol in wanted - current:
            await self.sio.enter_room(sid, symbol_room(symbol))
        if wanted:
            await self.sio.leave_room(sid, ALL_SIGNALS_ROOM)
        else:
            await self.sio.enter_room(sid, ALL_SIGNALS_ROOM)
        return sorted(wanted)
