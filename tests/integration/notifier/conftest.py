"""Notifier fixtures: a destinations file from the example, a recording webhook receiver,
a publisher, and ``python -m notifier`` processes (every one stopped afterwards)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from common.constants import DEFAULT_CHANNEL, history_key, notifier_group
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.support.receivers import HttpReceiver
from tests.support.services import ROOT, ServiceProcess

EXAMPLE = ROOT / "docs" / "examples" / "notifier.yaml"
SECRET = "core-test-webhook-secret"
SECRET_ENV = "QS_WEBHOOK_SECRET"
DESTINATION = "ops-webhook"
GROUP = notifier_group(DESTINATION)
STREAM = history_key(DEFAULT_CHANNEL)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "notifier_outage: the notifier's 60 s receiver outage (-m notifier_outage)"
    )
    config.addinivalue_line(
        "markers",
        "notifier_stress: random SIGTERM/SIGKILL of notifier replicas, about 40 s "
        '(-m "not notifier_stress" leaves it out)',
    )


def write_config(path: Path, url: str, **overrides: Any) -> Path:
    """The example file's first destination, pointed at ``url``, with no filters unless
    ``overrides`` says otherwise."""
    data = yaml.safe_load(EXAMPLE.read_text())
    first = {**data["destinations"][0], "url": url, "filters": {}, **overrides}
    path.write_text(yaml.safe_dump({"destinations": [first]}))
    return path


def signal(i: int, symbol: str = "BTC-USD") -> dict[str, Any]:
    return make_signal(
        signal_id=f"{symbol}:test:{i}",
        signal_type="BUY" if i % 2 == 0 else "SELL",
        price=60_000.0 + i,
        symbol=symbol,
        strategy="sma_cross",
        ts=time.time(),
        n=i,
    )


@pytest.fixture
def hook_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as rx:
        yield rx


@pytest.fixture
def config_path(tmp_path: Path, hook_receiver: HttpReceiver) -> Path:
    return write_config(tmp_path / "notifier.yaml", f"{hook_receiver.url}/hook")


@pytest.fixture
def publisher(redis_client: aioredis.Redis) -> SignalPublisher:
    return SignalPublisher(redis_client, DEFAULT_CHANNEL)


async def wait_for_group(client: aioredis.Redis, group: str = GROUP, timeout_s: float = 20) -> None:
    """Until the destination's consumer group exists: signals before it are not its."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await client.exists(STREAM):
            groups = await client.xinfo_groups(STREAM)
            if any(g["name"].decode() == group for g in groups):
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"group {group} not created within {timeout_s}s")


async def pending(client: aioredis.Redis, group: str = GROUP) -> int:
    return int((await client.xpending(STREAM, group))["pending"])


@dataclass(frozen=True)
class Rig:
    """What an in-process notifier test works with."""

    redis_url: str
    redis: aioredis.Redis
    publisher: SignalPublisher
    receiver: HttpReceiver
    config_path: Path
    tmp_path: Path


@pytest.fixture
def rig(
    redis_url: str,
    redis_client: aioredis.Redis,
    hook_receiver: HttpReceiver,
    config_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Rig:
    monkeypatch.setenv(SECRET_ENV, SECRET)  # the file references the webhook secret by env
    return Rig(
        redis_url,
        redis_client,
        SignalPublisher(redis_client, DEFAULT_CHANNEL),
        hook_receiver,
        config_path,
        config_path.parent,
    )


NotifierFactory = Callable[..., ServiceProcess]


@pytest.fixture
def notifier_factory(redis_url: str, config_path: Path) -> Iterator[NotifierFactory]:
    """Start ``python -m notifier`` on the test Redis with the test destinations file."""
    started: list[ServiceProcess] = []

    def start(consumer: str = "n1", wait_ready: bool = True, **env: Any) -> ServiceProcess:
        full = {
            "REDIS_URL": redis_url,
            "NOTIFIER_CONFIG": str(config_path),
            "NOTIFIER_CONSUMER": consumer,
            "NOTIFIER_CLAIM_IDLE_MS": "2000",
            "NOTIFIER_LEASE_TTL_S": "2",
            SECRET_ENV: SECRET,
            **{k.upper(): str(v) for k, v in env.items()},
        }
        proc = ServiceProcess("notifier", full)
        started.append(proc)
        return proc.start(wait_ready=wait_ready)

    yield start
    for proc in started:
        proc.stop()


def write_two(path: Path, url: str, **overrides: Any) -> Path:
    """Two destinations from the example's first, ``hook-a`` and ``hook-b``, posting to
    ``<url>/a`` and ``<url>/b``: two replicas each deliver one."""
    data = yaml.safe_load(EXAMPLE.read_text())
    base = {**data["destinations"][0], "filters": {}, **overrides}
    entries = [{**base, "name": f"hook-{x}", "url": f"{url}/{x}"} for x in "ab"]
    path.write_text(yaml.safe_dump({"destinations": entries}))
    return path
