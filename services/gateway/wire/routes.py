"""Which requests python-engineio answers, decided outside python-engineio.

``engineio.ASGIApp`` (and ``socketio.ASGIApp``, its subclass) hands a request to Engine.IO
when its path, with a ``/`` added if it has none, starts with the configured
``engineio_path`` (``/socket.io/``): ``/socket.io``, ``/socket.io/`` and ``/socket.io/x``
all reach Engine.IO, and ``engineio_path=None`` sends it everything. ``EngineRoutes``
applies that rule for the guard and hands out Engine.IO's own handler, so the guard
routes every request itself and the library's router never sees an HTTP or WebSocket
request: whatever its rule becomes, nothing reaches Engine.IO except through the guard.
``routing_mismatches`` compares the rule with the installed library.

Mount prefix: ASGI servers put it in both ``root_path`` and ``path`` (uvicorn
``--root-path``). python-engineio compares the whole path, so behind ``--root-path`` it
answered nothing; here the prefix is removed first, as Starlette does for its routes. An
ingress that strips the prefix itself (tests/browser/prefix_proxy.py) needs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import engineio

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

#: Path spellings the routing check probes (relative to ``/socket.io/``'s parent).
PROBE_PATHS = ("", "/", "/x", "/x/", "/socket.io", "/socket.io/", "/socket.io/x", "/socket.iox")


def route_path(scope: Scope) -> str:
    """The path below the mount prefix (Starlette's rule): ``/p/socket.io/`` with
    ``root_path`` ``/p`` is ``/socket.io/``; a path outside the prefix stays whole."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    rest = path[len(root) :]
    return rest if rest.startswith("/") else (path if rest else "/")


@dataclass(frozen=True, slots=True)
class EngineRoutes:
    """The split ``engineio.ASGIApp`` makes, done by its caller instead."""

    engineio_path: str | None  # normalised by the library: leading and trailing "/"
    engine: ASGIApp  # Engine.IO's request handler
    other: ASGIApp  # every other HTTP/WebSocket request
    lifespan: ASGIApp  # the ASGI app itself: it passes lifespan on as configured

    @classmethod
    def of(cls, app: engineio.ASGIApp) -> EngineRoutes:
        if app.static_files:
            raise ValueError("static_files are served by engineio.ASGIApp's router: not used")
        mismatches = routing_mismatches(app.engineio_path)
        if mismatches:
            raise RuntimeError(
                f"python-engineio {version('python-engineio')}: ASGIApp no longer routes "
                f"by engineio_path prefix (paths {mismatches}); see gateway/wire/routes.py"
            )
        server = app.engineio_server
        # socketio.AsyncServer forwards to its Engine.IO server: call that one directly,
        # one pass-through coroutine frame fewer kept alive per open WebSocket.
        handler = getattr(server, "eio", server).handle_request
        return cls(app.engineio_path, handler, app.other_asgi_app or _not_found, app)

    def is_engine(self, scope: Scope) -> bool:
        """Whether python-engineio would answer this HTTP/WebSocket request."""
        return self.engineio_path is None or _engine_prefixed(route_path(scope), self.engineio_path)


def _engine_prefixed(path: str, engineio_path: str) -> bool:
    return (path if path.endswith("/") else path + "/").startswith(engineio_path)


def library_routes_to_engine(engineio_path: str | None, path: str) -> bool:
    """Ask the installed ``engineio.ASGIApp`` whether it hands ``path`` to Engine.IO.

    Runs its ``__call__`` with recording stand-ins for the two apps it routes between; it
    awaits nothing else before routing, so the coroutine is driven without a loop."""
    reached: list[str] = []

    async def engine(_scope: Scope, _receive: Any, _send: Any) -> None:
        reached.append("engine")

    async def other(_scope: Scope, _receive: Any, _send: Any) -> None:
        reached.append("other")

    server = type("RecordingServer", (), {"handle_request": staticmethod(engine)})()
    spelling = engineio_path.strip("/") if engineio_path else None
    app = engineio.ASGIApp(server, other_asgi_app=other, engineio_path=spelling)
    call = app({"type": "http", "path": path, "root_path": "", "headers": []}, None, None)
    try:
        call.send(None)
    except StopIteration:
        pass
    else:
        call.close()
        raise RuntimeError("engineio.ASGIApp suspended while routing a request")
    return reached == ["engine"]


def routing_mismatches(engineio_path: str | None) -> list[str]:
    """Probe paths on which ``EngineRoutes`` and the installed library disagree."""
    base = (engineio_path or "/socket.io/").rstrip("/")
    probes = {*PROBE_PATHS, base, base + "/", base + "/x", base + "x"}
    return sorted(
        p
        for p in probes
        if library_routes_to_engine(engineio_path, p)
        != (engineio_path is None or _engine_prefixed(p, engineio_path))
    )


async def _not_found(scope: Scope, receive: Any, send: Any) -> None:
    """engineio.ASGIApp's answer when no other app is configured."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"Not Found"})
