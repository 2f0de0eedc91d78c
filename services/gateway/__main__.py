"""``python -m gateway``: run one gateway process (configure with environment variables)."""

from __future__ import annotations

import asyncio
import signal

import uvicorn
import uvloop

from common.http import ManagedServer
from common.logging import configure_logging, get_logger
from common.settings import load_settings
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from gateway.wire.direct import DirectSendProtocol

log = get_logger("gateway")


def close_listeners(server: uvicorn.Server) -> None:
    for listener in server.servers:
        listener.close()


async def serve(settings: GatewaySettings) -> int:
    gateway = Gateway(settings)
    config = uvicorn.Config(
        gateway.app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s / 4)),
        # Bigger client messages are refused by the WebSocket layer before being buffered.
        ws_max_size=settings.max_client_packet_bytes,
        # Clients offer per-message deflate; for ~200-byte signals it costs ~13 % of the CPU
        # per delivery and doubles memory per connection (docs/performance.md).
        ws_per_message_deflate=False,
        # engine.io already pings every PING_INTERVAL_S and closes clients that stop
        # answering; uvicorn's own WebSocket ping would be a second timer per connection.
        ws_ping_interval=None,
        http="httptools",
        # Adds a synchronous frame write that the fan-out uses (gateway/wire/direct.py).
        ws=DirectSendProtocol,
    )
    server = ManagedServer(config)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    async def shutdown() -> None:
        try:
            await asyncio.wait_for(
                gateway.drain(stop_accepting=lambda: close_listeners(server)),
                timeout=settings.shutdown_grace_s / 2,
            )
        except TimeoutError:
            log.warning("drain_timed_out")
        server.should_exit = True

    def on_signal(signum: int) -> None:
        if stopping:
            server.force_exit = True
            return
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stopping.append(loop.create_task(shutdown()))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await server.serve()
    return 0 if server.started else 1


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level, settings.log_format)
    # uvicorn only picks uvloop when it owns the loop; here __main__ does, so choose it.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(serve(settings)))


if __name__ == "__main__":
    main()
