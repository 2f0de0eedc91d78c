"""One real monitor process: Redis outage, restart warm-up, start-up failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import redis

from common.constants import DEFAULT_CHANNEL, history_key
from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer
from tests.support.services import ROOT

FAST = {
    "symbols": "A,B,C",
    "tick_interval_s": 0.02,
    "lease_ttl_s": 1.5,
    "strategies": "sma_cross",
    "strategy_params": '{"sma_cross": {"fast": 2, "slow": 4}}',
}


def published_ids(url: str) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        return [
            orjson.loads(f[b"data"])["id"] for _, f in client.xrange(history_key(DEFAULT_CHANNEL))
        ]
    finally:
        client.close()


def test_signals_made_while_redis_is_down_are_published_when_it_returns(
    service_factory: ServiceFactory,
    redis_server: RedisServer,
) -> None:
    monitor = service_factory("monitor", **FAST)
    monitor.wait_for(
        lambda: monitor.metric("qs_monitor_signals_published_total") >= 3, 10, "publishing"
    )
    redis_server.stop()
    monitor.wait_for(lambda: monitor.readyz() == 503, 5, "unready")
    monitor.wait_for(lambda: monitor.metric("qs_monitor_buffer_depth") >= 3, 10, "buffering")
    buffered = monitor.metric("qs_monitor_buffer_depth")
    published = monitor.metric("qs_monitor_signals_published_total")
    redis_server.start()
    monitor.wait_ready(15)
    monitor.wait_for(
        lambda: monitor.metric("qs_monitor_signals_published_total") >= published + buffered,
        10,
        "flushing the buffer",
    )
    assert monitor.metric("qs_monitor_buffer_dropped_total") == 0
    assert monitor.metric("qs_redis_reconnects_total", {"loop": "publisher"}) >= 1
    # The restarted Redis lost its keys; what the monitor flushed afterwards is all distinct.
    ids = published_ids(redis_server.url)
    assert len(ids) == len(set(ids)) >= buffered


def test_a_restarted_monitor_warms_up_from_the_bars_in_redis(
    service_factory: ServiceFactory,
) -> None:
    first = service_factory("monitor", **FAST)
    first.wait_for(lambda: first.metric("qs_monitor_ticks_total") >= 30, 10, "ticking")
    assert first.terminate() == 0
    summary = [e for e in first.log_events() if e.get("event") == "monitor_stopped"]
    assert len(summary) == 1 and summary[0]["ticks"] >= 30
    second = service_factory("monitor", **FAST)
    second.wait_for(
        lambda: len([e for e in second.log_events() if e.get("event") == "symbol_warmed_up"]) == 3,
        10,
        "warm",
    )
    for event in (e for e in second.log_events() if e.get("event") == "symbol_warmed_up"):
        assert event["from_redis"] == event["needed"] == 5


def run_monitor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "services"), **env},
        timeout=60,
        check=False,
    )


def test_help_lists_settings_and_bad_config_fails_in_one_line() -> None:
    started = time.monotonic()
    shown = run_monitor("--help")
    assert shown.returncode == 0 and "LEASE_TTL_S" in shown.stdout and "8001" in shown.stdout
    bad = run_monitor(STRATEGY_PARAMS='{"rsi": {"period": 0}}', STRATEGIES="rsi")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith("configuration error:") and "period" in bad.stderr
    assert time.monotonic() - started < 30
