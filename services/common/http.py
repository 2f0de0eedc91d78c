"""Probe and metrics routes, and a uvicorn server that leaves signals to its owner."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

ReadinessCheck = Callable[[], dict[str, bool]]

LIVEZ_PATH = "/livez"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"


def probe_router(readiness: ReadinessCheck, registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(LIVEZ_PATH)
    async def livez() -> dict[str, str]:
        # Answering at all proves the event loop runs; Redis is readiness' business.
        return {"status": "ok"}

    @router.get(READYZ_PATH)
    async def readyz() -> JSONResponse:
        checks = readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get(METRICS_PATH)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def probe_app(readiness: ReadinessCheck, registry: CollectorRegistry, title: str) -> FastAPI:
    """The internal server's app (METRICS_PORT): the probe routes and nothing else."""
    app = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(probe_router(readiness, registry))
    return app


def internal_server(app: FastAPI, host: str, port: int) -> ManagedServer:
    return ManagedServer(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
    )


class ListenError(RuntimeError):
    """The HTTP server could not start listening (the port is taken, the address is wrong)."""


class ManagedServer(uvicorn.Server):
    """A uvicorn server whose owner handles SIGTERM/SIGINT (drain first, then exit 0)."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets)
        except SystemExit as exc:
            # uvicorn exits the process when it cannot bind (after logging the OS error);
            # an exception lets the service end with its own start-up line and exit code.
            if self.started:
                raise
            raise ListenError(f"cannot listen on {self.config.host}:{self.config.port}") from exc

    def close_listeners(self) -> None:
        """Stop accepting connections; a no-op before uvicorn has bound its sockets."""
        # uvicorn creates ``servers`` only in startup(): a stop can come before that.
        for listener in getattr(self, "servers", ()):
            listener.close()


@asynccontextmanager
async def serving_alongside(server: ManagedServer | None) -> AsyncIterator[None]:
    """Run ``server`` (the internal metrics/probe server) for as long as the body runs.

    Entered only once it listens, so a taken port ends start-up with ``ListenError``
    before the public port opens; it stops after the body, so /readyz keeps answering
    "not ready" while the public server drains. ``None``: nothing to run (METRICS_PORT=0).
    """
    if server is None:
        yield
        return
    task = asyncio.create_task(server.serve(), name="internal-http")
    while not server.started:
        if task.done():
            task.result()  # ListenError when it could not bind
            raise ListenError(f"{server.config.host}:{server.config.port} stopped at start-up")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
