"""Fixtures: Redis with ACL, with TLS, a Sentinel group, and service processes on them."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.redis_security.servers import (
    RedisProcess,
    SentinelGroup,
    TlsFiles,
    make_tls_files,
    start_acl_redis,
    start_sentinel_group,
    start_tls_redis,
)
from tests.support.services import ServiceProcess

ADMIN_PASSWORD = "admin-only-0f3c9a"
ACL_USER, ACL_PASSWORD = "qs-service", "svc-pw-6b1e77d2c4"

Services = Callable[..., ServiceProcess]


@pytest.fixture
def acl_redis() -> Iterator[int]:
    server, port = start_acl_redis(ADMIN_PASSWORD, ACL_USER, ACL_PASSWORD)
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_files() -> TlsFiles:
    return make_tls_files(Path(tempfile.mkdtemp(prefix="qs-tls-")))


@pytest.fixture
def tls_redis(tls_files: TlsFiles) -> Iterator[int]:
    server: RedisProcess
    server, port = start_tls_redis(tls_files)
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture
def sentinel_group() -> Iterator[SentinelGroup]:
    group = start_sentinel_group()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def services() -> Iterator[Services]:
    """Start ``python -m gateway|monitor`` with an explicit environment; all stopped after."""
    started: list[ServiceProcess] = []

    def start(module: str, wait_ready: bool = True, **env: Any) -> ServiceProcess:
        proc = ServiceProcess(module, {k.upper(): str(v) for k, v in env.items()})
        started.append(proc)
        return proc.start(wait_ready=wait_ready)

    yield start
    for proc in started:
        proc.stop()
