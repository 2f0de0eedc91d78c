"""MAX_CONNECTIONS counts each open connection once, with real concurrent clients.

Two miscounts were found: a handshake counted as in flight after its session existed
(80 simultaneous connects with a limit of 50 admitted 26), and closed sessions counted
until python-engineio's sweep (up to a ping timeout after clients left). Refused WebSocket
handshakes logged an ERROR each; one warning per overload episode is the promise.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import socketio
import websockets

from tests.conftest import ServiceFactory
from tests.integration.hardening.logs import assert_clean_log
from tests.support.services import ServiceProcess

P = "qs_gateway"
LIMIT = 50
ROOM_AGAIN_AFTER_S = 0.1  # the guard re-counts a full server at most every 50 ms


async def connect_all(
    url: str, count: int, transports: list[str] | None
) -> list[socketio.AsyncClient]:
    """``count`` official clients connecting at once; those that got in."""
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(count)]
    results = await asyncio.gather(
        *(c.connect(url, transports=transports, wait_timeout=10) for c in clients),
        return_exceptions=True,
    )
    refused = [r for r in results if r is not None]
    assert all(isinstance(r, socketio.exceptions.ConnectionError) for r in refused), refused
    return [c for c, r in zip(clients, results, strict=True) if r is None]


async def refused_ws_handshakes(gateway: ServiceProcess, count: int) -> None:
    url = gateway.base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    for _ in range(count):
        with pytest.raises(websockets.InvalidStatus) as refusal:
            async with websockets.connect(url, open_timeout=5):
                pass
        assert refusal.value.response.status_code == 503


@pytest.mark.parametrize(
    "transports",
    [None, ["websocket"], ["polling"]],
    ids=["polling-upgrade", "websocket", "polling"],
)
async def test_the_limit_admits_exactly_its_size_and_frees_at_once(
    service_factory: ServiceFactory, transports: list[str] | None
) -> None:
    gateway = service_factory("gateway", max_connections=LIMIT)
    first = await connect_all(gateway.base_url, 80, transports)
    assert len(first) == LIMIT
    refusals = gateway.metric(f"{P}_connections_refused_total", {"reason": "max_connections"})
    assert refusals >= 80 - LIMIT  # the python client may try a refused transport twice
    await refused_ws_handshakes(gateway, 10)

    await asyncio.gather(*(c.disconnect() for c in first))
    left = time.monotonic()
    # Gone for Socket.IO; python-engineio still holds their sessions until it sweeps.
    gateway.wait_for(lambda: gateway.metric(f"{P}_connected_clients") == 0, 5, "all gone")
    await asyncio.sleep(ROOM_AGAIN_AFTER_S)
    second = await connect_all(gateway.base_url, LIMIT, transports)
    took = time.monotonic() - left
    assert len(second) == LIMIT, f"{len(second)} of {LIMIT} fit {took:.2f} s after the others left"
    await refused_ws_handshakes(gateway, 3)
    await asyncio.gather(*(c.disconnect() for c in second))

    # Two overload episodes, one warning each; no ERROR line for any refused handshake.
    warnings = [e for e in gateway.log_events() if e.get("event") == "connections_refused"]
    assert len(warnings) == 2, warnings
    assert_clean_log(gateway)
