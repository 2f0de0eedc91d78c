"""The Socket.IO server: Redis manager, connection handlers, symbol subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import socketio

from common.constants import (
    ALL_SIGNALS_ROOM,
    SUBSCRIBE_EVENT,
    SYMBOL_ROOM_PREFIX,
    UNSUBSCRIBE_EVENT,
    socketio_channel,
    symbol_room,
)
from common.logging import get_logger
from common.redis import RedisConfig
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

log = get_logger(__name__)

NAMESPACE = "/"
MAX_SYMBOLS_PER_REQUEST = 200
MAX_SYMBOL_LENGTH = 64


def cors_option(origins: list[str]) -> str | list[str] | None:
    """python-socketio's spelling: None is same-origin only, '*' is any."""
    if not origins:
        return None
    return "*" if "*" in origins else origins


def create_sio(settings: GatewaySettings) -> socketio.AsyncServer:
    redis = RedisConfig.from_settings(settings)  # the same URL/options as our own clients
    manager = socketio.AsyncRedisManager(
        redis.url,
        channel=socketio_channel(settings.signal_channel),
        redis_options=redis.manager_options(),
    )
    return socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins=cors_option(settings.cors_allowed_origins),
        transports=settings.transports,
        ping_interval=settings.ping_interval_s,
        ping_timeout=settings.ping_timeout_s,
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


def register_handlers(
    sio: socketio.AsyncServer, metrics: GatewayMetrics, is_draining: Callable[[], bool]
) -> None:
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if is_draining():
            raise socketio.exceptions.ConnectionRefusedError("draining: reconnect elsewhere")
        await sio.enter_room(sid, ALL_SIGNALS_ROOM)
        metrics.connected_clients.inc()

    async def disconnect(sid: str, *_reason: Any) -> None:
        metrics.connected_clients.dec()

    async def subscribe(sid: str, data: Any = None) -> dict[str, Any]:
        try:
            symbols = parse_symbols(data)
        except SymbolRequestError as exc:
            return {"ok": False, "error": str(exc)}
        if symbols:
            await sio.leave_room(sid, ALL_SIGNALS_ROOM)
        for symbol in symbols:
            await sio.enter_room(sid, symbol_room(symbol))
        return {"ok": True, "symbols": _subscribed_symbols(sio, sid)}

    async def unsubscribe(sid: str, data: Any = None) -> dict[str, Any]:
        try:
            symbols = parse_symbols(data) if data else _subscribed_symbols(sio, sid)
        except SymbolRequestError as exc:
            return {"ok": False, "error": str(exc)}
        for symbol in symbols:
            await sio.leave_room(sid, symbol_room(symbol))
        remaining = _subscribed_symbols(sio, sid)
        if not remaining:
            # No symbols left means the default again: every signal.
            await sio.enter_room(sid, ALL_SIGNALS_ROOM)
        return {"ok": True, "symbols": remaining}

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    sio.on(SUBSCRIBE_EVENT, subscribe)
    sio.on(UNSUBSCRIBE_EVENT, unsubscribe)


def _subscribed_symbols(sio: socketio.AsyncServer, sid: str) -> list[str]:
    rooms = sio.rooms(sid, namespace=NAMESPACE)
    return sorted(r[len(SYMBOL_ROOM_PREFIX) :] for r in rooms if r.startswith(SYMBOL_ROOM_PREFIX))
