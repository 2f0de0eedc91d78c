"""The guard's route rule is python-engineio's own, checked against the installed library."""

from __future__ import annotations

import socketio
from hypothesis import given
from hypothesis import strategies as st

from gateway.wire.routes import (
    EngineRoutes,
    library_routes_to_engine,
    route_path,
    routing_mismatches,
)

PIECES = st.sampled_from(["/", "socket.io", "socket", ".io", "io", "x", "%2E", "//", "?", ""])
PATHS = st.lists(PIECES, max_size=6).map("".join)
ENGINE_PATHS = st.sampled_from(["/socket.io/", "/a/b/", "/x/", None])


def routes(engineio_path: str | None) -> EngineRoutes:
    async def nothing(*_args: object) -> None:
        return None

    return EngineRoutes(engineio_path, nothing, nothing, nothing)


@given(engineio_path=ENGINE_PATHS, path=PATHS)
def test_the_rule_is_the_librarys_on_any_path(engineio_path: str | None, path: str) -> None:
    scope = {"type": "http", "path": path, "root_path": ""}
    expected = library_routes_to_engine(engineio_path, path)
    assert routes(engineio_path).is_engine(scope) is expected


def test_every_spelling_that_reaches_engineio() -> None:
    rule = routes("/socket.io/")
    for path in ("/socket.io", "/socket.io/", "/socket.io/x", "/socket.io//"):
        assert rule.is_engine({"path": path}), path
        assert library_routes_to_engine("/socket.io/", path), path
    for path in ("/", "/socket.iox", "/socket", "/api/socket.io/", "//socket.io/"):
        assert not rule.is_engine({"path": path}), path
        assert not library_routes_to_engine("/socket.io/", path), path
    assert routing_mismatches("/socket.io/") == []
    assert routing_mismatches(None) == []


def test_below_a_mount_prefix() -> None:
    # uvicorn --root-path /signals: the path carries the prefix; Engine.IO lives below it.
    rule = routes("/socket.io/")
    assert rule.is_engine({"path": "/signals/socket.io", "root_path": "/signals"})
    assert rule.is_engine({"path": "/signals/socket.io/", "root_path": "/signals"})
    assert not rule.is_engine({"path": "/signals/api/info", "root_path": "/signals"})
    assert not rule.is_engine({"path": "/signalssocket.io/", "root_path": "/signals"})
    assert route_path({"path": "/signals", "root_path": "/signals"}) == "/"
    assert route_path({"path": "/other/x", "root_path": "/signals"}) == "/other/x"


def test_routes_of_a_socketio_app_call_engineio_directly() -> None:
    sio = socketio.AsyncServer(async_mode="asgi")

    async def api(*_args: object) -> None:
        return None

    app = socketio.ASGIApp(sio, other_asgi_app=api)
    found = EngineRoutes.of(app)
    assert found.engineio_path == "/socket.io/"
    assert found.engine == sio.eio.handle_request
    assert found.other is api
    assert found.lifespan is app
    custom = EngineRoutes.of(socketio.ASGIApp(sio, socketio_path="feed"))
    assert custom.is_engine({"path": "/feed"})
    assert not custom.is_engine({"path": "/socket.io/"})
