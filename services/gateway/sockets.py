"""The Socket.IO server: Redis manager, connection handlers, symbol subscriptions."""

from __future__ import annotations

from typing import Any

import orjson
import socketio

from common.constants import (
    ALL_SIGNALS_ROOM,
    AUTH_REFRESH_EVENT,
    NAMESPACE,
    OFFSET_FIELD,
    SUBSCRIBE_EVENT,
    SYMBOL_ROOM_PREFIX,
    UNSUBSCRIBE_EVENT,
    socketio_channel,
    symbol_room,
)
from common.logging import get_logger
from common.redis import RedisConfig
from common.schema import Offset, parse_offset
from gateway.direct import DirectSocketIOServer
from gateway.http_security import AllowedOrigins
from gateway.limits import EventGuard
from gateway.manager import FanoutManager
from gateway.metrics import GatewayMetrics
from gateway.recovery import ClientRecovery
from gateway.sessions import AuthSessions
from gateway.settings import GatewaySettings

log = get_logger(__name__)
MAX_SYMBOLS_PER_REQUEST = 200
MAX_SYMBOL_LENGTH = 64


def cors_option(origins: list[str]) -> str | AllowedOrigins | None:
    """python-socketio's spelling: None is same-origin only, '*' is any; else a check that
    also admits the gateway's own origin, so its web page keeps working."""
    if not origins:
        return None
    return "*" if "*" in origins else AllowedOrigins(origins)


#: What a connection keeps of its handshake's WSGI-style environ (for diagnostics).
ENVIRON_KEPT = ("REMOTE_ADDR", "HTTP_ORIGIN", "HTTP_USER_AGENT", "PATH_INFO", "QUERY_STRING")


def trim_environ(environ: dict[str, Any]) -> None:
    """Drop what python-socketio keeps for the whole connection but nothing reads again.

    engine.io builds the handshake's environ (every header, the ASGI scope, an input
    reader of a class it defines per request: ~5 KB) and python-socketio keeps it until
    the client leaves, for ``get_environ``, which the gateway does not use. When this
    Socket.IO connect handler runs, engine.io is done with it: the WebSocket driver took
    what it needs when the transport started, and every long-polling request brings an
    environ of its own. Measured: 5 KB less per idle connection (docs/performance.md).
    """
    kept = {key: environ[key] for key in ENVIRON_KEPT if key in environ}
    environ.clear()
    environ.update(kept)


class OrjsonModule:
    """The json interface python-socketio/engineio call: orjson, faster on every packet."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, **_kwargs: Any) -> Any:
        return orjson.loads(data)


def create_sio(settings: GatewaySettings, metrics: GatewayMetrics) -> socketio.AsyncServer:
    redis = RedisConfig.from_settings(settings)  # the same URL/options as our own clients
    manager = FanoutManager(
        redis.url,
        channel=socketio_channel(settings.signal_channel),
        redis_options=redis.manager_options(),
        queue_max=settings.client_queue_max,
        on_slow_client=metrics.slow_clients.inc,
        on_delivered=metrics.count_deliveries,
    )
    return DirectSocketIOServer(
        async_mode="asgi",
        client_manager=manager,
        json=OrjsonModule,
        cors_allowed_origins=cors_option(settings.cors_allowed_origins),
        transports=settings.transports,
        allow_upgrades="websocket" in settings.transports,
        ping_interval=settings.ping_interval_s,
        ping_timeout=settings.ping_timeout_s,
        # Also the maxPayload announced to clients; bigger packets are refused.
        max_http_buffer_size=settings.max_client_packet_bytes,
        logger=False,
        engineio_logger=False,
    )


class SymbolRequestError(ValueError):
    pass


def parse_symbols(data: Any) -> list[str]:
    """Accept a list of symbols (or one symbol) from a client, or say what is wrong."""
    if isinstance(data, str):
        data = [data]
    if isinstance(data, dict):
        data = data.get("symbols")
    if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
        raise SymbolRequestError("expected a list of symbol strings")
    if len(data) > MAX_SYMBOLS_PER_REQUEST:
        raise SymbolRequestError(f"at most {MAX_SYMBOLS_PER_REQUEST} symbols per request")
    symbols = [s.strip() for s in data if s.strip()]
    if any(len(s) > MAX_SYMBOL_LENGTH for s in symbols):
        raise SymbolRequestError(f"symbols are at most {MAX_SYMBOL_LENGTH} characters")
    return list(dict.fromkeys(symbols))


def parse_resume(auth: Any) -> tuple[Offset | None, list[str]]:
    """Parse ``auth``: ``{"offset": "<last offset seen>", "symbols": [...]}``, both optional."""
    if not isinstance(auth, dict):
        return None, []
    raw_offset = auth.get(OFFSET_FIELD)
    offset = parse_offset(raw_offset)
    if raw_offset is not None and offset is None:
        raise SymbolRequestError(
            f"'{OFFSET_FIELD}' must be a history offset like '1700000000000-0'"
        )
    symbols = parse_symbols(auth["symbols"]) if auth.get("symbols") is not None else []
    return offset, symbols


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
            events.bind(self._kick)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        trim_environ(environ)
        try:
            offset, symbols = parse_resume(auth)
        except SymbolRequestError as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        self.sessions.authenticate(sid, auth)
        if refused := self.sessions.refused(sid, symbols):
            self.sessions.forget(sid)
            raise socketio.exceptions.ConnectionRefusedError(f"not allowed: {refused[:10]}")
        self.metrics.connected_clients.inc()
        if offset is not None:
            # Out of the rooms until caught up; recovery joins them (gateway/recovery.py).
            self.recovery.start(sid, offset, set(symbols) or self._default(sid))
            return
        await self._set(sid, set(symbols))

    async def disconnect(self, sid: str, *_reason: Any) -> None:
        self.recovery.forget(sid)
        self.sessions.forget(sid)
        if self.events is not None:
            self.events.forget(sid)
        self.metrics.connected_clients.dec()

    async def _kick(self, sid: str) -> None:
        await self.sio.disconnect(sid, ignore_queue=True)

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
