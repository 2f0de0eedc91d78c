"""The real gateway (services/gateway) with candidate optimisations, for the benchmark only.

    FAST_OPTS=all REDIS_URL=... PORT=... TRANSPORTS=websocket python fast_gateway.py

FAST_OPTS is a comma-separated list of:
  manager    FastEmitRedisManager (no task per recipient), see fast_manager.py
  orjson     orjson as the Socket.IO/Engine.IO json module
  uvloop     run the event loop on uvloop (the gateway's __main__ uses asyncio.run)
  nodeflate  uvicorn ws_per_message_deflate=False (clients offer it; Node's server declines)
  ws=IMPL    uvicorn ws implementation: websockets-sansio (auto), websockets, wsproto
  all        manager, orjson, uvloop, nodeflate
Nothing here changes the gateway's code: it builds the same Gateway with other parts.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import socketio
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fast_manager import FastEmitRedisManager

import gateway.app as gateway_app
from common.constants import socketio_channel
from common.http import ManagedServer
from common.logging import configure_logging
from common.settings import load_settings
from gateway.settings import GatewaySettings
from gateway.sockets import cors_option

ALL = ("manager", "orjson", "uvloop", "nodeflate")


class OrjsonModule:
    """The json interface python-socketio and python-engineio call (dumps/loads)."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, **_kwargs: Any) -> Any:
        return orjson.loads(data)


def parse_opts(raw: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        if item == "all":
            opts |= dict.fromkeys(ALL, "1")
        else:
            key, _, value = item.partition("=")
            opts[key] = value or "1"
    return opts


def make_create_sio(opts: dict[str, str]):  # type: ignore[no-untyped-def]
    def create_sio(settings: GatewaySettings) -> socketio.AsyncServer:
        manager_cls = FastEmitRedisManager if "manager" in opts else socketio.AsyncRedisManager
        manager = manager_cls(
            str(settings.redis_url),
            channel=socketio_channel(settings.signal_channel),
            redis_options={"socket_connect_timeout": 2.0, "health_check_interval": 10},
        )
        extra: dict[str, Any] = {"json": OrjsonModule} if "orjson" in opts else {}
        return socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            cors_allowed_origins=cors_option(settings.cors_allowed_origins),
            transports=settings.transports,
            ping_interval=settings.ping_interval_s,
            ping_timeout=settings.ping_timeout_s,
            logger=False,
            engineio_logger=False,
            **extra,
        )

    return create_sio


async def serve(settings: GatewaySettings, opts: dict[str, str]) -> None:
    gateway = gateway_app.Gateway(settings)
    config = uvicorn.Config(
        gateway.app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws=opts.get("ws", "auto"),
        ws_per_message_deflate="nodeflate" not in opts,
    )
    server = ManagedServer(config)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(15, lambda: setattr(server, "should_exit", True))
    await server.serve()


def main() -> None:
    opts = parse_opts(os.environ.get("FAST_OPTS", "all"))
    gateway_app.create_sio = make_create_sio(opts)  # the Gateway builds its server with it
    settings = load_settings(GatewaySettings, [])
    configure_logging(settings.log_level, settings.log_format)
    if "uvloop" in opts:
        import uvloop

        uvloop.run(serve(settings, opts))
    else:
        asyncio.run(serve(settings, opts))


if __name__ == "__main__":
    main()
