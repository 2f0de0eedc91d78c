"""The ``qs`` console script as a user runs it: real subprocesses against real gateways."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from common.constants import DEFAULT_CHANNEL, history_key
from common.publish import SignalPublisher
from common.schema import make_signal
from tests.conftest import ClientFactory, ServiceFactory
from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

QS = str(Path(sys.executable).parent / "qs")
ADMIN = "an-admin-token-long-enough-42"
PUBLISHER = "a-publisher-secret-long-enough-42"


def qs(*args: str, timeout_s: float = 20.0, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QS, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **env},
        check=False,
    )


async def publish(redis: aioredis.Redis, count: int) -> list[str]:
    publisher = SignalPublisher(redis, DEFAULT_CHANNEL)
    offsets = []
    for i in range(count):
        signal_ = make_signal(
            signal_id=f"c-{i}", signal_type="SELL", price=100.0 + i, symbol="ETH-USD", strategy="t"
        )
        offset = await publisher.publish(signal_)
        assert offset is not None
        offsets.append(offset)
    return offsets


def test_help_version_and_usage_errors() -> None:
    top = qs("--help")
    assert top.returncode == 0 and "exit codes" in top.stdout
    for command in ("tail", "publish", "history", "broadcast"):
        sub = qs(command, "--help")
        assert sub.returncode == 0 and f"usage: qs {command}" in sub.stdout
    assert qs("--version").stdout.startswith("qs ")
    bogus = qs("bogus")
    assert bogus.returncode == 2 and "invalid choice" in bogus.stderr
    assert qs("publish", "--type", "BUY", "--price", "lots").returncode == 2


async def test_tail_json_prints_json_lines_and_stops_after_count(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish(redis_client, 4)
    done = qs("tail", "--url", gateway.base_url, "--json", "--offset", offsets[0], "--count", "3")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [s["id"] for s in lines] == ["c-1", "c-2", "c-3"]
    assert [s["offset"] for s in lines] == offsets[1:]


async def test_tail_ends_with_exit_0_on_ctrl_c(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish(redis_client, 2)
    proc = subprocess.Popen(  # noqa: ASYNC220 (the test reads its pipes line by line)
        [QS, "tail", "--url", gateway.base_url, "--offset", offsets[0]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["id"] == "c-1"  # not a TTY: JSON lines
        # Notices go to stderr, so stdout stays parseable.
        assert proc.stderr.readline().startswith("resumed: 1 missed signal(s) recovered")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait(5)


def test_unreachable_gateway_exits_3() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    assert qs("tail", "--url", dead, "--give-up-after", "0.5").returncode == 3
    assert qs("history", "--url", dead).returncode == 3
    assert qs("broadcast", "hi", "--url", dead, "--token", ADMIN).returncode == 3


async def test_broadcast_with_the_admin_token_reaches_clients(
    service_factory: ServiceFactory, client_factory: ClientFactory
) -> None:
    gateway = service_factory("gateway", admin_token=ADMIN)
    client = await client_factory(gateway.base_url)
    sent = qs("broadcast", "maintenance at 18:00", "--level", "warning", "--url", gateway.base_url,
              QS_ADMIN_TOKEN=ADMIN)  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    await client.wait_for(1, attr="system")
    assert client.system[0]["message"] == "maintenance at 18:00"
    assert client.system[0]["level"] == "warning"
    wrong = qs("broadcast", "x", "--url", gateway.base_url, QS_ADMIN_TOKEN="not-the-token-1234")
    assert wrong.returncode == 4 and "refused" in wrong.stderr


async def test_history_json_lists_the_newest_signals(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway")
    offsets = await publish(redis_client, 5)
    done = qs("history", "--url", gateway.base_url, "--json", "--limit", "2", "--order", "desc")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [s["offset"] for s in lines] == offsets[:-3:-1]
    filtered = qs("history", "--url", gateway.base_url, "--json", "--symbol", "NOPE-USD")
    assert filtered.returncode == 0 and filtered.stdout == ""


async def test_publish_answers_with_the_offset_and_refuses_bad_input_and_tokens(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    gateway = service_factory("gateway", publish_tokens=f"cli:{PUBLISHER}")
    url = ["--url", gateway.base_url]
    args = ["publish", "--type", "buy", "--price", "60000", "--symbol", "BTC-USD", "--id", "p-1"]
    done = qs(*args, *url, QS_PUBLISH_TOKEN=PUBLISHER)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("published p-1 at ")
    offset = done.stdout.split()[-1]
    again = qs(*args, *url, "--json", QS_PUBLISH_TOKEN=PUBLISHER)
    assert json.loads(again.stdout)["results"][0] == {
        "id": "p-1",
        "offset": offset,
        "duplicate": True,
    }
    entries = await redis_client.xrange(history_key(DEFAULT_CHANNEL))
    assert len(entries) == 1
    assert qs(*args, *url, QS_PUBLISH_TOKEN="wrong-secret-0123456789").returncode == 4
    bad = qs("publish", "--type", "BUY", "--price", "-1", *url, QS_PUBLISH_TOKEN=PUBLISHER)
    assert bad.returncode == 1 and "price" in bad.stderr
