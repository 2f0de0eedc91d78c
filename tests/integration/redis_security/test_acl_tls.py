"""Both services and the Socket.IO manager on a Redis with an ACL user and on a TLS-only Redis.

Each test starts a real gateway and a real monitor; a python-socketio client receives a
signal the monitor computed (our relay's Redis client) and an admin broadcast (which goes
through python-socketio's AsyncRedisManager), so all three Redis users are proven.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ClientFactory
from tests.integration.redis_security.conftest import (
    ACL_PASSWORD,
    ACL_USER,
    ADMIN_PASSWORD,
    Services,
)
from tests.integration.redis_security.servers import TlsFiles
from tests.support.services import ServiceProcess, http_get

ADMIN_TOKEN = "redis-security-admin-token-42"
MONITOR_ENV: dict[str, Any] = {
    "symbols": "BTC-USD",
    "strategies": "sma_cross",
    "strategy_params": '{"sma_cross": {"fast": 2, "slow": 3}}',
    "tick_interval_s": 0.05,
    "lease_ttl_s": 2,
    "shutdown_grace_s": 5,
}


async def assert_signal_and_broadcast_flow(
    gateway: ServiceProcess, client_factory: ClientFactory
) -> None:
    client = await client_factory(gateway.base_url)
    await client.wait_for(1, timeout_s=20)
    assert client.signals[0]["strategy"] == "sma_cross"
    async with httpx.AsyncClient(timeout=5) as http:
        resp = await http.post(
            f"{gateway.base_url}/api/broadcast",
            json={"message": "hello"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert resp.status_code == 202
    await client.wait_for(1, timeout_s=10, attr="system")
    assert client.system[0]["message"] == "hello"


def assert_no_secret_leaks(secret: str, *procs: ServiceProcess) -> None:
    for proc in procs:
        assert secret not in proc.log_path.read_text(), f"{proc.module} logged a Redis secret"
        assert secret.encode() not in http_get(f"{proc.base_url}/metrics")[1]


async def test_acl_user_for_both_services_and_the_socketio_manager(
    acl_redis: int, services: Services, client_factory: ClientFactory
) -> None:
    # Gateway: the URL names the user, the password comes from its own (Secret-backed) setting.
    gateway = services(
        "gateway",
        redis_url=f"redis://{ACL_USER}@127.0.0.1:{acl_redis}/0",
        redis_password=ACL_PASSWORD,
        admin_token=ADMIN_TOKEN,
    )
    # Monitor: user and password in the URL.
    monitor = services(
        "monitor",
        **MONITOR_ENV,
        redis_url=f"redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{acl_redis}/0",
    )
    await assert_signal_and_broadcast_flow(gateway, client_factory)
    assert_no_secret_leaks(ACL_PASSWORD, gateway, monitor)


def test_wrong_password_fails_start_up_without_echoing_it(
    acl_redis: int, services: Services
) -> None:
    wrong = "not-the-password-5e2a"
    gateway = services(
        "gateway",
        wait_ready=False,
        redis_startup_attempts=2,
        redis_url=f"redis://{ACL_USER}:{wrong}@127.0.0.1:{acl_redis}/0",
    )
    assert gateway.proc is not None
    assert gateway.proc.wait(20) != 0
    logs = gateway.log_path.read_text()
    assert "redis_unreachable" in logs
    assert wrong not in logs and ADMIN_PASSWORD not in logs


async def test_tls_with_client_certificates_for_both_services(
    tls_redis: int, tls_files: TlsFiles, services: Services, client_factory: ClientFactory
) -> None:
    tls_env = {
        "redis_url": f"rediss://127.0.0.1:{tls_redis}/0",
        "redis_tls_ca_file": tls_files.ca,
        "redis_tls_cert_file": tls_files.client_cert,
        "redis_tls_key_file": tls_files.client_key,
    }
    gateway = services("gateway", **tls_env, admin_token=ADMIN_TOKEN)
    services("monitor", **tls_env, **MONITOR_ENV)
    await assert_signal_and_broadcast_flow(gateway, client_factory)


def test_tls_server_certificate_is_verified(
    tls_redis: int, tls_files: TlsFiles, services: Services
) -> None:
    """Without our CA the system trust store does not know the server: start-up fails."""
    gateway = services(
        "gateway",
        wait_ready=False,
        redis_startup_attempts=1,
        redis_url=f"rediss://127.0.0.1:{tls_redis}/0",
        redis_tls_cert_file=tls_files.client_cert,
        redis_tls_key_file=tls_files.client_key,
    )
    assert gateway.proc is not None
    assert gateway.proc.wait(20) != 0
    assert "certificate verify failed" in gateway.log_path.read_text()
