"""The Socket.IO server the gateway runs: our engine, our manager, orjson, our limits."""

from __future__ import annotations

from typing import Any

import orjson
import socketio

from common.constants import socketio_channel
from common.redis import RedisConfig
from gateway.edge.http_security import AllowedOrigins
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.wire.direct import DirectSocketIOServer
from gateway.wire.manager import FanoutManager


def cors_option(origins: list[str]) -> str | AllowedOrigins | None:
    """python-socketio's spelling: None is same-origin only, '*' is any; else a check that
    also admits the gateway's own origin, so its web page keeps working."""
    if not origins:
        return None
    return "*" if "*" in origins else AllowedOrigins(origins)


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
