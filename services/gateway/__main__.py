"""``python -m gateway``: run one gateway process (configure with environment variables).

Exit codes (common.cli): 0 stopped on request, 1 unexpected failure, 2 bad argument or
setting, 69 Redis unreachable at start-up, 70 an installed library breaks an assumption
of gateway/wire (docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import resource
import sys
from typing import TYPE_CHECKING

import uvicorn
import uvloop

from common.cli import (
    EXIT_FAILURE,
    EXIT_INCOMPATIBLE_LIBRARY,
    EXIT_OK,
    EXIT_REDIS_UNAVAILABLE,
)
from common.http import (
    ListenError,
    ManagedServer,
    internal_server,
    probe_app,
    serving_alongside,
)
from common.lifecycle import (
    StartupCancelled,
    StopSignals,
    run_service,
    startup_failed,
    unless_stopped,
)
from common.logging import adopt_library_loggers, configure_logging, get_logger
from common.redis import RedisUnavailableError
from common.settings import load_settings
from gateway.settings import GatewaySettings
from gateway.wire.compat import IncompatibleLibraryError, verify_library_seams

if TYPE_CHECKING:
    from gateway.app import Gateway

SERVICE = "gateway"
#: Files the gateway holds besides client sockets (Redis, listeners, logs, the loop).
OPEN_FILES_SPARE = 64
log = get_logger(SERVICE)


def server_config(gateway: Gateway, settings: GatewaySettings) -> uvicorn.Config:
    from gateway.wire.direct import DirectSendProtocol  # see build_gateway

    return uvicorn.Config(
        gateway.app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # serve() starts and stops the gateway itself, so a signal can cancel start-up
        # (uvicorn's lifespan start-up cannot be interrupted).
        lifespan="off",
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


def build_gateway(settings: GatewaySettings) -> Gateway:
    """Check the libraries, then import the gateway: gateway/wire/ reads library names at
    import time, so an upgrade that removed one would otherwise end start-up in an
    ImportError traceback instead of the named assumption (the check imports them itself)."""
    verify_library_seams()
    from gateway.app import Gateway

    return Gateway(settings)


async def serve(settings: GatewaySettings) -> int:
    signals = StopSignals(log)
    try:
        gateway = build_gateway(settings)
    except IncompatibleLibraryError as exc:
        return startup_failed(log, "incompatible_library", exc, EXIT_INCOMPATIBLE_LIBRARY)
    adopt_library_loggers()  # python-socketio/engineio attached their own just now
    try:
        await unless_stopped(gateway.start(), signals.stopped)
    except BaseException as exc:
        await gateway.stop()  # close what start() opened, however it ended
        if isinstance(exc, StartupCancelled):
            log.info("startup_cancelled")
            return EXIT_OK
        if isinstance(exc, RedisUnavailableError):
            return startup_failed(log, "redis_unavailable", exc, EXIT_REDIS_UNAVAILABLE)
        raise
    try:
        return await listen(gateway, settings, signals)
    finally:
        await gateway.stop()


async def listen(gateway: Gateway, settings: GatewaySettings, signals: StopSignals) -> int:
    """Serve HTTP until a stop signal, then drain; a second signal cuts the drain short."""
    server = ManagedServer(server_config(gateway, settings))

    async def drain_on_stop() -> None:
        await signals.stopped.wait()
        try:
            await asyncio.wait_for(
                gateway.drain(stop_accepting=server.close_listeners),
                timeout=settings.shutdown_grace_s / 2,
            )
        except TimeoutError:
            log.warning("drain_timed_out")
        server.should_exit = True

    def force_exit() -> None:
        server.force_exit = True

    signals.on_repeat = force_exit
    drainer = asyncio.create_task(drain_on_stop(), name="drain-on-stop")
    try:
        async with serving_alongside(metrics_server(gateway, settings)):
            await server.serve()
    except ListenError as exc:
        return startup_failed(log, "cannot_listen", exc, EXIT_FAILURE)
    finally:
        drainer.cancel()
    return EXIT_OK if server.started else EXIT_FAILURE


def metrics_server(gateway: Gateway, settings: GatewaySettings) -> ManagedServer | None:
    """With METRICS_PORT, /metrics and the probes move to their own port (app.py then
    leaves them off the public one); None keeps them on PORT."""
    if not settings.metrics_port:
        return None
    app = probe_app(gateway.readiness, gateway.metrics.registry, "gateway internal")
    return internal_server(app, settings.host, settings.metrics_port)


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one: each client holds a socket, and
    a container's default soft limit (often 1,024) would cap a gateway at about 1,000
    clients whatever MAX_CONNECTIONS says. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return sys.maxsize
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft  # an unlimited hard limit: the kernel's nr_open decides; leave it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level, settings.log_format, service=SERVICE)
    open_files = raise_open_files_limit()
    if open_files < settings.max_connections + OPEN_FILES_SPARE:
        log.warning(
            "open_files_limit_low",
            limit=open_files,
            max_connections=settings.max_connections,
        )
    # uvicorn only picks uvloop when it owns the loop; here __main__ does, so choose it.
    run_service(lambda: serve(settings), log, loop_factory=uvloop.new_event_loop)


if __name__ == "__main__":
    main()
