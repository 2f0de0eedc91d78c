"""METRICS_PORT: /metrics and the probes on an internal port, off the public one.

Real processes and real Redis: the chart sets METRICS_PORT so that no Ingress or HTTPRoute,
which route only the public port, can expose /metrics or the probes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ServiceFactory
from tests.support.redis_server import free_port
from tests.support.services import ServiceProcess, http_get

pytestmark = pytest.mark.e2e

PROBES = ("/metrics", "/livez", "/readyz")


def get(port: int, path: str) -> tuple[int, bytes]:
    return http_get(f"http://127.0.0.1:{port}{path}", 2.0)


def wait_internal_ready(proc: ServiceProcess, port: int, timeout_s: float = 30.0) -> None:
    def ready() -> bool:
        try:
            return get(port, "/readyz")[0] == 200
        except OSError:
            return False

    proc.wait_for(ready, timeout_s, f"ready on METRICS_PORT {port}")


def test_gateway_serves_metrics_and_probes_only_on_the_internal_port(
    service_factory: ServiceFactory,
) -> None:
    internal = free_port()
    gateway = service_factory("gateway", wait_ready=False, metrics_port=internal)
    wait_internal_ready(gateway, internal)
    status, body = get(internal, "/metrics")
    assert status == 200 and b"qs_gateway_connected_clients" in body
    assert get(internal, "/livez")[0] == 200
    for path in PROBES:
        assert get(gateway.port, path)[0] == 404, f"public port still serves {path}"
    # The public port keeps the page, the API and Socket.IO; the internal one has none of them.
    assert get(gateway.port, "/")[0] == 200
    handshake = "/socket.io/?EIO=4&transport=polling"
    status, body = get(gateway.port, handshake)
    assert status == 200 and b'"sid"' in body
    assert get(internal, "/")[0] == 404
    assert get(internal, handshake)[0] == 404
    assert gateway.terminate() == 0, gateway.logs()


def test_gateway_without_metrics_port_keeps_everything_on_one_port(
    service_factory: ServiceFactory,
) -> None:
    gateway = service_factory("gateway")  # METRICS_PORT unset: 0, local runs as before
    for path in PROBES:
        assert get(gateway.port, path)[0] == 200, path


def test_monitor_listens_only_on_the_internal_port(service_factory: ServiceFactory) -> None:
    internal = free_port()
    monitor = service_factory(
        "monitor", wait_ready=False, metrics_port=internal, tick_interval_s="0.2"
    )
    wait_internal_ready(monitor, internal)
    monitor.wait_for(
        lambda: b"qs_monitor_leases_held" in get(internal, "/metrics")[1], 20, "exporting"
    )
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", monitor.port), timeout=1).close()
    assert monitor.terminate() == 0, monitor.logs()


def test_metrics_port_equal_to_port_is_a_setting_error(redis_url: str) -> None:
    port = free_port()
    env = {"REDIS_URL": redis_url, "PORT": str(port), "METRICS_PORT": str(port)}
    proc = ServiceProcess("gateway", env, port=port)
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=proc.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: METRICS_PORT, PORT: " in result.stderr


def test_a_taken_metrics_port_ends_start_up_with_cannot_listen(
    service_factory: ServiceFactory,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        gateway = service_factory("gateway", wait_ready=False, metrics_port=taken.getsockname()[1])
        assert gateway.proc is not None
        deadline = time.monotonic() + 30
        while gateway.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gateway.proc.returncode == 1, gateway.logs()
    events = [e.get("event") for e in gateway.log_events()]
    assert "startup_failed" in events, gateway.logs()
    assert "cannot_listen" in gateway.logs()
