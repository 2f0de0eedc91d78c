"""Connection limit, HTTP security headers and CORS, and secrets kept out of logs/metrics."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
import socketio

from tests.conftest import ClientFactory, ServiceFactory
from tests.integration.hardening.conftest import ADMIN_TOKEN, JWT_SECRET

P = "qs_gateway"
PARTNER = "https://partner.example"


async def test_connections_over_the_limit_are_refused_and_shed(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    gateway = service_factory("gateway", max_connections=3)
    clients = [await client_factory(gateway.base_url) for _ in range(3)]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client_factory(gateway.base_url)
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        full = await http.get("/socket.io/?EIO=4&transport=polling")
        assert full.status_code == 503
        assert full.json()["error"] == "server_full"
        assert full.headers["retry-after"]
        assert (await http.get("/readyz")).status_code == 200  # HTTP still answers
    assert gateway.metric(f"{P}_connections_refused_total", {"reason": "max_connections"}) == 2
    assert [e["event"] for e in gateway.log_events()].count("connections_refused") == 1
    await clients[0].disconnect()
    gateway.wait_for(lambda: gateway.metric(f"{P}_connected_clients") == 2, 5, "at 2 clients")
    assert (await client_factory(gateway.base_url)).sio.connected  # room again: accepted


async def test_headers_cors_and_no_secret_in_logs_or_metrics(
    service_factory: ServiceFactory,
) -> None:
    gateway = service_factory(
        "gateway",
        admin_token=ADMIN_TOKEN,
        jwt_secret=JWT_SECRET,
        jwt_algorithms="HS256",
        cors_allowed_origins=PARTNER,
        hsts_max_age_s=600,
        log_level="debug",
    )
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        page = await http.get("/")
        assert "script-src 'self'" in page.headers["content-security-policy"]  # web.py's CSP kept
        for resp in (page, await http.get("/api/info"), await http.get("/metrics")):
            assert resp.headers["x-content-type-options"] == "nosniff"
            assert resp.headers["x-frame-options"] == "DENY"
            assert resp.headers["referrer-policy"] == "no-referrer"
            assert resp.headers["strict-transport-security"] == "max-age=600"
        latest = "/api/signals/latest"
        allowed = await http.get(latest, headers={"Origin": PARTNER})
        assert allowed.headers["access-control-allow-origin"] == PARTNER
        other = await http.get(latest, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = await http.options(
            "/api/broadcast",
            headers={"Origin": PARTNER, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 400  # no cross-origin admin calls from browsers
        evil_sio = "/socket.io/?EIO=4&transport=polling"
        assert (await http.get(evil_sio, headers={"Origin": "https://evil.example"})).is_error

        for token in ("wrong-token-123456789", ADMIN_TOKEN):
            body = {"message": "hello"}
            auth = {"Authorization": f"Bearer {token}"}
            status = (await http.post("/api/broadcast", json=body, headers=auth)).status_code
            assert status == (202 if token == ADMIN_TOKEN else 401)
        metrics = (await http.get("/metrics")).text
    # The page's own origin still reaches Socket.IO with an allowlist set (as a browser
    # would send it), with a valid token; a forged token is refused.
    good = jwt.encode({"sub": "alice", "exp": time.time() + 60}, JWT_SECRET, "HS256")
    forged = jwt.encode({"sub": "alice", "exp": time.time() + 60}, "x" * 40, "HS256")
    for token, accepted in ((forged, False), (good, True)):
        client = socketio.AsyncClient()
        connect = client.connect(
            gateway.base_url,
            headers={"Origin": gateway.base_url},
            auth={"token": token},
            transports=["websocket"],
        )
        if accepted:
            await connect
            await client.disconnect()
        else:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await connect
    for secret in (ADMIN_TOKEN, JWT_SECRET):
        assert secret not in metrics
        assert secret not in gateway.log_path.read_text(errors="replace")
