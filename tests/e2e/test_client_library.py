"""qs_client.SignalStream against real gateway processes and a real Redis: typed signals in
order, failover to a second gateway after a SIGKILL with no gap and no duplicate, the offset
file across streams, epoch changes and JWT refresh."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
from qs_client import AuthRefused, Recovery, Signal, SignalStream

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.conftest import ServiceFactory

pytestmark = pytest.mark.e2e

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
AUTH = {"auth_required": "true", "jwt_secret": SECRET, "jwt_audience": "qs"}


def token(ttl_s: float = 300) -> str:
    claims = {"sub": "alice", "aud": "qs", "exp": time.time() + ttl_s}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def publish(redis: aioredis.Redis, start: int, count: int, **extra: Any) -> list[str]:
    """Publish through the monitor's atomic script; return the offsets."""
    publisher = SignalPublisher(redis, DEFAULT_CHANNEL)
    offsets = []
    for i in range(start, start + count):
        signal = make_signal(
            signal_id=f"sig-{i}", signal_type="BUY", price=float(i), symbol="BTC-USD", strategy="t"
        )
        offset = await publisher.publish({**signal, **extra})
        assert offset is not None
        offsets.append(offset)
    return offsets


async def take(stream: SignalStream, count: int, timeout_s: float = 15.0) -> list[Any]:
    """The next ``count`` items (signals and notices), within a time bound."""

    async def collect() -> list[Any]:
        return [await anext(stream) for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout_s)


async def connected(stream: SignalStream, connects: int = 1, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while stream.connects < connects or stream.url is None:
        assert time.monotonic() < deadline, "stream did not connect"
        await asyncio.sleep(0.02)


async def test_stream_yields_published_signals_in_order_as_typed_objects(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    async with SignalStream([gateway.base_url]) as stream:
        await connected(stream)
        offsets = await publish(redis_client, 0, 5, note="why", indicators={"sma": 1.5})
        items = await take(stream, 5)
    assert all(isinstance(item, Signal) for item in items)
    assert [s.id for s in items] == [f"sig-{i}" for i in range(5)]
    assert [s.offset for s in items] == offsets
    first = items[0]
    assert (first.type, first.price, first.symbol, first.strategy) == ("BUY", 0.0, "BTC-USD", "t")
    assert first.extra == {"note": "why", "indicators": {"sma": 1.5}}
    assert stream.offset == offsets[-1]


async def test_sigkill_of_one_gateway_moves_the_stream_on_with_no_gap_and_no_duplicate(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    first, second = service_factory("gateway"), service_factory("gateway")
    total = 40
    async with SignalStream([first.base_url, second.base_url]) as stream:
        await connected(stream)
        assert stream.url == first.base_url

        async def publish_slowly() -> None:
            for i in range(total):
                await publish(redis_client, i, 1)
                await asyncio.sleep(0.02)

        publisher = asyncio.create_task(publish_slowly())
        before = await take(stream, 10)
        first.kill()  # SIGKILL: no drain, the connection just dies
        killed_at = time.monotonic()
        rest = await take(stream, total - 10 + 1, 20)
        moved_after_s = time.monotonic() - killed_at
        assert stream.url == second.base_url and stream.connects == 2
        await publisher
    signals = [i for i in before + rest if isinstance(i, Signal)]
    notices = [i for i in rest if isinstance(i, Recovery)]
    assert [s.id for s in signals] == [f"sig-{i}" for i in range(total)]
    assert len(notices) == 1 and notices[0].complete is True
    print(f"all {total} signals, in order, once; rest received {moved_after_s:.2f}s after the kill")


async def test_offset_file_lets_a_new_stream_resume_after_the_last_signal(
    service_factory: ServiceFactory, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    gateway = service_factory("gateway")
    offset_file = tmp_path / "last-offset"
    async with SignalStream([gateway.base_url], offset_file=offset_file) as stream:
        await connected(stream)
        offsets = await publish(redis_client, 0, 3)
        await take(stream, 3)
    assert offset_file.read_text().strip() == offsets[-1]

    later = await publish(redis_client, 3, 2)  # published while nobody listens
    async with SignalStream([gateway.base_url], offset_file=offset_file) as stream:
        assert stream.offset == offsets[-1]
        items = await take(stream, 3)
    assert [i.id for i in items[:2]] == ["sig-3", "sig-4"]
    assert items[2] == Recovery(True, 2, None, offsets[0].split(":")[0], offsets[-1])
    assert offset_file.read_text().strip() == later[-1]
    assert os.listdir(tmp_path) == ["last-offset"], "temporary files left behind"


async def test_history_lost_between_streams_is_reported_as_epoch_changed(
    service_factory: ServiceFactory, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    gateway = service_factory("gateway")
    offset_file = tmp_path / "offset"
    async with SignalStream([gateway.base_url], offset_file=offset_file) as stream:
        await connected(stream)
        old = await publish(redis_client, 0, 2)
        await take(stream, 2)
    await redis_client.flushall()
    new = await publish(redis_client, 10, 2)
    assert new[0].split(":")[0] != old[0].split(":")[0]
    async with SignalStream([gateway.base_url], offset_file=offset_file) as stream:
        items = await take(stream, 3)
    notice = items[-1]
    assert isinstance(notice, Recovery)
    assert (notice.complete, notice.reason) == (False, "epoch_changed")
    assert notice.epoch == new[0].split(":")[0]
    assert [i.id for i in items[:2]] == ["sig-10", "sig-11"]


async def test_epoch_change_seen_live_is_reported_before_the_new_epoch_signal(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    async with SignalStream([gateway.base_url]) as stream:
        await connected(stream)
        old = await publish(redis_client, 0, 1)
        await take(stream, 1)
        await redis_client.flushall()
        new = await publish(redis_client, 1, 1)
        notice, signal = await take(stream, 2)
    assert notice == Recovery(False, 0, "epoch_changed", new[0].split(":")[0], old[0])
    assert isinstance(signal, Signal) and signal.offset == new[0]


async def test_token_callable_refreshes_before_expiry_without_reconnecting(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", **AUTH, auth_warn_before_s=1, jwt_leeway_s=0)
    issued: list[float] = []

    async def fresh_token() -> str:
        issued.append(time.monotonic())
        return token(ttl_s=2.0)

    async with SignalStream([gateway.base_url], token=fresh_token) as stream:
        await connected(stream)
        await asyncio.sleep(4.5)  # two lifetimes of a token
        await publish(redis_client, 0, 1)
        (item,) = await take(stream, 1)
    assert isinstance(item, Signal) and item.id == "sig-0"
    assert stream.connects == 1, "the session was ended and re-made instead of refreshed"
    assert len(issued) >= 3  # the connect, then a refresh on each auth_expiring
    assert gateway.metric("qs_gateway_auth_expired_total") == 0


async def test_a_refused_token_raises_auth_refused(service_factory: ServiceFactory) -> None:
    gateway = service_factory("gateway", **AUTH)
    async with SignalStream([gateway.base_url], token=token(ttl_s=-60)) as stream:
        with pytest.raises(AuthRefused, match="token_expired"):
            await take(stream, 1)


def readme_python_example() -> str:
    """The Python block of the README's Integrate section, exactly as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## Integrate\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_readme_python_example_runs_as_written(
    service_factory: ServiceFactory, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish(redis_client, 0, 3)
    (tmp_path / "last-offset.txt").write_text(offsets[0])  # as left by an earlier run
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        readme_python_example(),
        cwd=tmp_path,
        env={**os.environ, "QS_URL": gateway.base_url},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [await asyncio.wait_for(proc.stdout.readline(), 20) for _ in range(2)]
        assert [line.decode().split() for line in lines] == [
            ["BUY", "BTC-USD", "1.0", offsets[1]],
            ["BUY", "BTC-USD", "2.0", offsets[2]],
        ]
        assert (tmp_path / "last-offset.txt").read_text().strip() == offsets[2]
    finally:
        proc.kill()
        await proc.wait()
