"""qs-client.js (the page's resume module) under the machine's Node, with the official
socket.io-client from tests/js, against real gateway processes and a real Redis: signals in
order, an older offset never delivered, a SIGKILLed gateway resumed with no gap and no
duplicate, epoch changes reported; its offset rule under node:test; the README's Node
example run as written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.conftest import ServiceFactory
from tests.support.clients import JS_DIR
from tests.support.proxy import TcpBalancer
from tests.support.services import http_get

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node not installed"),
    pytest.mark.skipif(
        not (JS_DIR / "node_modules" / "socket.io-client").is_dir(),
        reason="tests/js not installed (npm ci in tests/js)",
    ),
]


class NodeStream:
    """``tests/js/qs_stream.mjs``: each qs-client.js callback as a JSON line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[tuple[str, Any]] = []

    async def next(self, timeout_s: float = 10.0) -> tuple[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        assert line, f"qs_stream.mjs ended: {await self._stderr()}"
        event = json.loads(line)
        self.events.append((event["event"], event["data"]))
        return event["event"], event["data"]

    async def take(self, count: int, timeout_s: float = 15.0) -> list[tuple[str, Any]]:
        """The next ``count`` signals and recoveries (statuses are kept, not counted)."""
        deadline = time.monotonic() + timeout_s
        items: list[tuple[str, Any]] = []
        while len(items) < count:
            event = await self.next(max(0.01, deadline - time.monotonic()))
            if event[0] != "status":
                items.append(event)
        return items

    async def connected(self, timeout_s: float = 10.0) -> None:
        while (await self.next(timeout_s)) != ("status", {"state": "connected"}):
            pass

    def statuses(self) -> list[dict[str, Any]]:
        return [data for name, data in self.events if name == "status"]

    async def _stderr(self) -> str:
        assert self.proc.stderr is not None
        with contextlib.suppress(TimeoutError):
            return (await asyncio.wait_for(self.proc.stderr.read(), 2)).decode()
        return ""


@contextlib.asynccontextmanager
async def node_stream(url: str, **options: Any) -> AsyncIterator[NodeStream]:
    assert NODE is not None
    proc = await asyncio.create_subprocess_exec(
        NODE,
        str(JS_DIR / "qs_stream.mjs"),
        url,
        json.dumps(options),
        cwd=JS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeStream(proc)
    finally:
        proc.kill()
        await proc.wait()


async def publish(redis: aioredis.Redis, start: int, count: int) -> list[str]:
    """Publish through the monitor's atomic script; return the offsets."""
    publisher = SignalPublisher(redis, DEFAULT_CHANNEL)
    offsets = []
    for i in range(start, start + count):
        signal = make_signal(
            signal_id=f"sig-{i}", signal_type="BUY", price=float(i), symbol="BTC-USD", strategy="t"
        )
        offset = await publisher.publish(signal)
        assert offset is not None
        offsets.append(offset)
    return offsets


def ids(items: list[tuple[str, Any]]) -> list[str]:
    return [data["id"] for name, data in items if name == "signal"]


def epoch(offset: str) -> str:
    return offset.split(":", maxsplit=1)[0]


@pytest.mark.parametrize("tests", ["offsets.test.mjs", "qs-client.test.mjs"])
async def test_node_unit_tests_pass(tests: str) -> None:
    """The offset rule, and connectSignals' bookkeeping through a stand-in ``io``."""
    assert NODE is not None
    proc = await asyncio.create_subprocess_exec(
        NODE,
        "--test",
        tests,
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    assert proc.returncode == 0, out
    assert "# fail 0" in out and "# pass 0" not in out, out


@pytest.mark.e2e
async def test_signals_arrive_in_order_and_an_older_offset_is_never_delivered(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    async with node_stream(gateway.base_url) as stream:
        await stream.connected()
        offsets = await publish(redis_client, 0, 5)
        first = await stream.take(5)
        assert ids(first) == [f"sig-{i}" for i in range(5)]
        assert [data["offset"] for _, data in first] == offsets
        # Another publisher's plain PUBLISH is taken at its word (docs/delivery.md): one
        # carrying an old offset must not be delivered, one with no offset must be.
        stale = {**first[1][1], "id": "stale"}
        await redis_client.publish(DEFAULT_CHANNEL, orjson.dumps(stale))
        bare = make_signal(
            signal_id="bare", signal_type="SELL", price=1.0, symbol="BTC-USD", strategy="t"
        )
        await redis_client.publish(DEFAULT_CHANNEL, orjson.dumps(bare))
        await publish(redis_client, 5, 1)
        assert ids(await stream.take(2)) == ["bare", "sig-5"]


@pytest.mark.e2e
async def test_sigkill_of_the_gateway_resumes_with_no_gap_and_no_duplicate(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateways = [service_factory("gateway"), service_factory("gateway")]
    total = 40
    async with (
        TcpBalancer([g.port for g in gateways]) as balancer,
        node_stream(balancer.url) as stream,
    ):
        await stream.connected()
        (serving,) = [g for g in gateways if g.metric("qs_gateway_connected_clients") == 1]

        async def publish_slowly() -> None:
            for i in range(total):
                await publish(redis_client, i, 1)
                await asyncio.sleep(0.02)

        publisher = asyncio.create_task(publish_slowly())
        before = await stream.take(10)
        serving.kill()  # SIGKILL: no drain, the connection just dies
        killed_at = time.monotonic()
        rest = await stream.take(total - 10 + 1, 20)
        resumed_after_s = time.monotonic() - killed_at
        await publisher
    assert ids(before + rest) == [f"sig-{i}" for i in range(total)]
    recoveries = [data for name, data in rest if name == "recovery"]
    assert len(recoveries) == 1 and recoveries[0]["complete"] is True
    assert recoveries[0]["since"] in [d["offset"] for n, d in before + rest if n == "signal"]
    states = [s["state"] for s in stream.statuses()]
    assert states.count("connected") == 2 and "reconnecting" in states
    print(f"{total}/{total} in order, once; all received {resumed_after_s:.2f}s after the kill")


@pytest.mark.e2e
async def test_flushall_between_runs_is_reported_as_epoch_changed(
    service_factory: ServiceFactory, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    gateway = service_factory("gateway")
    storage_file = tmp_path / "offset"
    async with node_stream(gateway.base_url, storageFile=str(storage_file)) as stream:
        await stream.connected()
        old = await publish(redis_client, 0, 2)
        await stream.take(2)
    assert storage_file.read_text() == old[-1]  # persisted through `storage`

    await redis_client.flushall()
    new = await publish(redis_client, 10, 2)
    assert epoch(new[0]) != epoch(old[0])
    async with node_stream(gateway.base_url, storageFile=str(storage_file)) as stream:
        items = await stream.take(3)
    assert ids(items) == ["sig-10", "sig-11"]
    name, notice = items[-1]
    assert name == "recovery"
    assert (notice["complete"], notice["reason"], notice["epoch"]) == (
        False,
        "epoch_changed",
        epoch(new[0]),
    )
    assert storage_file.read_text() == new[-1]


@pytest.mark.e2e
async def test_flushall_seen_live_is_reported_before_the_new_epoch_signal(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    async with node_stream(gateway.base_url) as stream:
        await stream.connected()
        old = await publish(redis_client, 0, 1)
        await stream.take(1)
        await redis_client.flushall()
        new = await publish(redis_client, 1, 1)
        (n1, notice), (n2, signal) = await stream.take(2)
    assert (n1, n2) == ("recovery", "signal")
    assert notice == {
        "complete": False,
        "recovered": 0,
        "since": old[0],
        "reason": "epoch_changed",
        "epoch": epoch(new[0]),
    }
    assert signal["offset"] == new[0]


def readme_node_example() -> str:
    """The Node block of the README's Integrate > JavaScript section, exactly as written."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Integrate\n", 1)[1].split("\n## ", 1)[0]
    javascript = section.split("\n### JavaScript\n", 1)[1].split("\n### ", 1)[0]
    return javascript.split("```js\n", 1)[1].split("```", 1)[0]


@pytest.mark.e2e
async def test_the_readme_node_example_runs_as_written(
    service_factory: ServiceFactory, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish(redis_client, 0, 3)
    # The README's setup: socket.io-client installed, qs-client.js fetched from the gateway.
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    status, body = await asyncio.to_thread(http_get, f"{gateway.base_url}/static/qs-client.js")
    assert status == 200
    (tmp_path / "qs-client.js").write_bytes(body)
    (tmp_path / "signals.mjs").write_text(readme_node_example())
    (tmp_path / "last-offset.txt").write_text(offsets[0])  # as left by an earlier run
    assert NODE is not None
    proc = await asyncio.create_subprocess_exec(
        NODE,
        "signals.mjs",
        cwd=tmp_path,
        env={**os.environ, "QS_URL": gateway.base_url},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [await asyncio.wait_for(proc.stdout.readline(), 20) for _ in range(2)]
        assert [line.decode().split() for line in lines] == [
            ["BUY", "BTC-USD", "1", offsets[1]],
            ["BUY", "BTC-USD", "2", offsets[2]],
        ]
        later = await publish(redis_client, 3, 1)
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.decode().split() == ["BUY", "BTC-USD", "3", later[0]]
        assert (tmp_path / "last-offset.txt").read_text().strip() == later[0]
    finally:
        proc.kill()
        await proc.wait()
