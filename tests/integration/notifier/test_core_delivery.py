"""The delivery loop on a real Redis and a real webhook receiver, in-process: order,
acknowledgement only after a 2xx, filters, dead letters and the dead-letters command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from common.constants import DEFAULT_CHANNEL, dead_letters_key
from notifier.config import load_config
from notifier.destinations.base import Filters
from notifier.service import Notifier
from notifier.settings import NotifierSettings
from tests.integration.notifier.conftest import (
    GROUP,
    SECRET,
    SECRET_ENV,
    STREAM,
    Rig,
    pending,
    signal,
    wait_for_group,
    write_config,
)
from tests.support.receivers import Recorded, Reply
from tests.support.redis_server import free_port
from tests.support.services import ROOT

DEAD = dead_letters_key(DEFAULT_CHANNEL)


@asynccontextmanager
async def running(redis_url: str, config_path: Path) -> AsyncIterator[Notifier]:
    settings = NotifierSettings(
        redis_url=redis_url,
        notifier_config=config_path,
        notifier_consumer="inproc",
        notifier_lease_ttl_s=2,
        host="127.0.0.1",
        port=free_port(),
        shutdown_grace_s=5,
    )
    notifier = Notifier(settings, load_config(config_path))
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        yield notifier
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_in_order_and_acknowledged_only_after_the_2xx(rig: Rig) -> None:
    checker = redis.Redis.from_url(rig.redis_url)
    still_pending: list[bool] = []

    def answer(request: Recorded) -> Reply:
        # Seen by the receiver before it answers: the entry must not be acknowledged yet.
        entry = request.json()["offset"].split(":")[-1]
        rows = checker.xpending_range(STREAM, GROUP, entry, entry, 1)
        still_pending.append(len(rows) == 1)
        return Reply(200)

    rig.receiver.respond_with(answer)
    try:
        async with running(rig.redis_url, rig.config_path):
            await wait_for_group(rig.redis)
            positions = [await rig.publisher.publish(signal(i)) for i in range(40)]
            received = await rig.receiver.wait_for_async(40, timeout_s=20)
            await asyncio.sleep(0.2)
            assert await pending(rig.redis) == 0
    finally:
        checker.close()
    assert [r.json()["n"] for r in received] == list(range(40))
    assert [r.json()["offset"] for r in received] == positions
    assert [r.headers["idempotency-key"] for r in received] == [
        f"BTC-USD:test:{i}" for i in range(40)
    ]
    assert all(still_pending) and len(still_pending) == 40


async def test_filtered_signals_are_acknowledged_without_a_request(rig: Rig) -> None:
    path = write_config(rig.tmp_path / "f.yaml", rig.receiver.url, filters={"symbols": ["ETH-USD"]})
    async with running(rig.redis_url, path) as notifier:
        await wait_for_group(rig.redis)
        for i in range(6):
            await rig.publisher.publish(signal(i, "ETH-USD" if i % 3 == 0 else "BTC-USD"))
        received = await rig.receiver.wait_for_async(2, timeout_s=10)
        await asyncio.sleep(0.5)
        assert await pending(rig.redis) == 0
        outcomes = notifier.summary()
    assert [r.json()["n"] for r in received] == [0, 3]
    assert outcomes["delivered"] == 2 and outcomes["filtered"] == 4


def dead_letters_cli(rig: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "REDIS_URL": rig.redis_url,
        "NOTIFIER_CONFIG": str(rig.config_path),
        SECRET_ENV: SECRET,
    }
    return subprocess.run(
        [sys.executable, "-m", "notifier", "dead-letters", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_permanent_refusal_is_dead_lettered_then_retried_and_dropped(rig: Rig) -> None:
    refused = {"BTC-USD:test:1", "BTC-USD:test:2"}
    rig.receiver.respond_with(
        lambda r: Reply(422, b"unknown symbol") if r.json()["id"] in refused else Reply(200)
    )
    async with running(rig.redis_url, rig.config_path):
        await wait_for_group(rig.redis)
        for i in range(4):
            await rig.publisher.publish(signal(i))
        received = await rig.receiver.wait_for_async(4, timeout_s=10)
        await asyncio.sleep(0.3)
        assert await pending(rig.redis) == 0
    # Refused at once (one request each), and the loop went on in order.
    assert [r.json()["n"] for r in received] == [0, 1, 2, 3]
    assert await rig.redis.xlen(DEAD) == 2

    listed = dead_letters_cli(rig, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(x["idempotency_key"], x["attempts"]) for x in letters] == [
        ("BTC-USD:test:1", 1),
        ("BTC-USD:test:2", 1),
    ]
    assert "HTTP 422: unknown symbol" in letters[0]["error"]
    assert json.loads(letters[0]["data"])["n"] == 1

    rig.receiver.respond_with(None)  # the receiver accepts everything now
    retried = dead_letters_cli(rig, "retry", letters[0]["id"])
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f"{letters[0]['id']}: delivered to ops-webhook" in retried.stdout
    again = rig.receiver.requests[-1]
    assert again.json()["n"] == 1 and again.headers["idempotency-key"] == "BTC-USD:test:1"
    assert await rig.redis.xlen(DEAD) == 1

    dropped = dead_letters_cli(rig, "drop", "--all")
    assert dropped.returncode == 0 and "dropped 1 of 1" in dropped.stdout
    assert await rig.redis.xlen(DEAD) == 0
    assert len(rig.receiver.requests) == 5  # drop sent nothing


async def test_retries_exhausted_go_to_the_dead_letters(rig: Rig) -> None:
    path = write_config(
        rig.tmp_path / "r.yaml",
        rig.receiver.url,
        max_attempts=3,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
        circuit_failures=100,
    )
    rig.receiver.respond_with(lambda r: Reply(503) if r.json()["n"] == 0 else Reply(200))
    async with running(rig.redis_url, path) as notifier:
        await wait_for_group(rig.redis)
        await rig.publisher.publish(signal(0))
        await rig.publisher.publish(signal(1))
        received = await rig.receiver.wait_for_async(4, timeout_s=10)
        await asyncio.sleep(0.3)
        summary = notifier.summary()
    assert [r.json()["n"] for r in received] == [0, 0, 0, 1]
    assert [r.headers["x-qs-attempt"] for r in received[:3]] == ["1", "2", "3"]
    assert summary["dead_lettered"] == 1 and summary["retries"] == 2
    assert summary["failed_attempts"] == 3 and summary["delivered"] == 1
    letters: Any = await rig.redis.xrange(DEAD)
    ((_, fields),) = letters
    assert fields[b"attempts"] == b"3" and b"HTTP 503" in fields[b"error"]


async def test_retry_after_is_honoured_and_the_rate_limit_spaces_requests(rig: Rig) -> None:
    path = write_config(
        rig.tmp_path / "p.yaml",
        rig.receiver.url,
        rate_per_s=20,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
    )
    rig.receiver.script(Reply.rate_limited(1.5))  # the first answer: 429, Retry-After 1.5
    async with running(rig.redis_url, path):
        await wait_for_group(rig.redis)
        for i in range(21):
            await rig.publisher.publish(signal(i))
        received = await rig.receiver.wait_for_async(22, timeout_s=15)
    times = [r.received_at for r in received]
    assert [r.json()["n"] for r in received] == [0, *range(21)]
    assert times[1] - times[0] >= 1.5  # waited as told, not the 0.1 s backoff
    # 21 requests at 20/s at most: the last 20 span at least 0.95 s.
    assert times[-1] - times[1] >= 0.95


def test_retry_and_drop_refuse_unknown_ids(rig: Rig) -> None:
    for command in ("retry", "drop"):
        done = dead_letters_cli(rig, command, "1-1")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "not in quantum_signals:notifier:dead: 1-1" in done.stderr
    usage = dead_letters_cli(rig, "drop")
    assert usage.returncode == 2 and "give dead-letter ids or --all" in usage.stderr


async def test_an_entry_that_trips_a_bug_is_dead_lettered_and_the_loop_goes_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Filters.matches

    def buggy(self: Filters, signal: Mapping[str, Any]) -> bool:
        if signal.get("n") == 1:
            raise RuntimeError("a bug")
        return original(self, signal)

    monkeypatch.setattr(Filters, "matches", buggy)
    async with running(rig.redis_url, rig.config_path) as notifier:
        await wait_for_group(rig.redis)
        for i in range(3):
            await rig.publisher.publish(signal(i))
        received = await rig.receiver.wait_for_async(2, timeout_s=10)
        await asyncio.sleep(0.3)
        assert await pending(rig.redis) == 0
        summary = notifier.summary()
    assert [r.json()["n"] for r in received] == [0, 2]
    assert summary["dead_lettered"] == 1
    letters: Any = await rig.redis.xrange(DEAD)
    assert letters[0][1][b"error"] == b"internal error: RuntimeError('a bug')"
