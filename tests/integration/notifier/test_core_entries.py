"""Whatever is in the history stream, ``python -m notifier`` settles every entry in order:
valid signals are delivered, malformed entries (no ``data``, not JSON, not UTF-8, not an
object, over MAX_MESSAGE_BYTES, breaking the signal contract) are counted, logged and
dead-lettered, and the loop goes on without a traceback. Hypothesis writes the entries
with XADD on a real Redis; one real process lives through all examples."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.constants import (
    DEFAULT_CHANNEL,
    dead_letters_key,
    history_epoch_key,
    notifier_replicas_key,
)
from tests.integration.notifier.conftest import GROUP, STREAM, NotifierFactory, signal
from tests.support.receivers import HttpReceiver

DEAD = dead_letters_key(DEFAULT_CHANNEL)
_ids = itertools.count()

# Keys the signal contract gives a type to; an extra field must avoid them to stay valid.
CONTRACT = {"type", "price", "id", "symbol", "strategy", "ts", "v", "offset"}
CONTRACT |= {"timeframe", "params", "indicators", "reason"}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
extra_fields = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda k: k not in CONTRACT), json_values, max_size=4
)


@st.composite
def valid_entry(draw: st.DrawFn) -> tuple[str, dict[bytes, bytes]]:
    sig = {**signal(next(_ids)), **draw(extra_fields)}
    other = draw(
        st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8), max_size=2)
    )
    fields = {k: v for k, v in other.items() if k != b"data"}
    return "valid", {**fields, b"data": orjson.dumps(sig)}


def _bad(data: bytes) -> tuple[str, dict[bytes, bytes]]:
    return "bad", {b"data": data}


no_data = st.dictionaries(
    st.binary(min_size=1, max_size=12).filter(lambda k: k != b"data"),
    st.binary(max_size=32),
    min_size=1,
    max_size=3,
).map(lambda f: ("bad", f))
# Random bytes without a "type" key can never be a signal.
not_json = st.binary(max_size=64).filter(lambda b: b'"type"' not in b).map(_bad)
not_object = json_values.filter(lambda v: not isinstance(v, dict)).map(
    lambda v: _bad(orjson.dumps(v))
)
missing = st.sampled_from(["type", "price"]).map(
    lambda k: _bad(orjson.dumps({f: v for f, v in signal(0).items() if f != k}))
)
wrong_type = st.sampled_from(
    [{"type": "HOLD"}, {"price": "60000"}, {"price": -1}, {"type": ["BUY"]}]
).map(lambda o: _bad(orjson.dumps({**signal(0), **o})))
non_utf8 = st.just(_bad(b'{"type": "BUY", "price": 1, "symbol": "\xff\xfe"}'))
huge = st.just(_bad(orjson.dumps({**signal(0), "pad": "x" * 70_000})))
entries = st.lists(
    st.one_of(valid_entry(), no_data, not_json, not_object, missing, wrong_type, non_utf8, huge),
    min_size=1,
    max_size=8,
)


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def settled(client: redis.Redis, last_id: bytes) -> bool:
    group = next(g for g in client.xinfo_groups(STREAM) if g["name"] == GROUP.encode())
    return int(group["pending"]) == 0 and group["last-delivered-id"] == last_id


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_every_entry_is_delivered_or_dead_lettered_in_order(
    sync_redis: redis.Redis, hook_receiver: HttpReceiver, notifier_factory: NotifierFactory
) -> None:
    proc = notifier_factory("n1")
    deadline = time.monotonic() + 20
    while not any(g["name"] == GROUP.encode() for g in _groups(sync_redis)):
        assert time.monotonic() < deadline, proc.logs()
        time.sleep(0.05)
    counts = {"valid": 0, "bad": 0}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(batch=entries)
    def check(batch: list[tuple[str, dict[bytes, Any]]]) -> None:
        seen = len(hook_receiver.requests)
        dead_before = sync_redis.xlen(DEAD)
        ids = [sync_redis.xadd(STREAM, fields) for _, fields in batch]
        wait = time.monotonic() + 15
        while not settled(sync_redis, ids[-1]):
            assert time.monotonic() < wait, proc.logs()
            time.sleep(0.02)
        expected_ok = [orjson.loads(f[b"data"])["id"] for kind, f in batch if kind == "valid"]
        got = [r.headers["idempotency-key"] for r in hook_receiver.requests[seen:]]
        assert got == expected_ok
        letters = sync_redis.xrange(DEAD)[dead_before:]
        expected_bad = [i for (kind, _), i in zip(batch, ids, strict=True) if kind == "bad"]
        assert [f[b"entry_id"] for _, f in letters] == expected_bad
        for _, fields in letters:
            assert fields[b"error"].startswith(b"malformed history entry: ")
            assert len(fields[b"data"]) <= 64 * 1024 + 1024  # capped, with room for U+FFFD
        for kind, _ in batch:
            counts[kind] += 1

    check()
    assert proc.proc is not None and proc.proc.poll() is None
    assert proc.metric("qs_notifier_bad_entries_total") == counts["bad"]
    assert proc.metric("qs_notifier_dead_letters_total") == counts["bad"]
    events = proc.log_events()
    errors = [e for e in events if e.get("level") in ("error", "critical")]
    assert [e for e in errors if e["event"] != "dead_lettered"] == [], proc.logs()
    assert "Traceback" not in proc.log_path.read_text()
    malformed = [e for e in events if e["event"] == "entry_malformed"]
    assert len(malformed) == counts["bad"]
    assert {e["reason"] for e in malformed} <= {
        "too_large",
        "not_json",
        "not_object",
        "invalid",
        "no_data",
    }


def _groups(client: redis.Redis) -> list[dict[str, Any]]:
    try:
        return list(client.xinfo_groups(STREAM))
    except redis.ResponseError:
        return []


def test_entries_trimmed_while_pending_are_counted_and_skipped(
    sync_redis: redis.Redis, hook_receiver: HttpReceiver, notifier_factory: NotifierFactory
) -> None:
    """Pending entries of a dead consumer deleted from the stream: XAUTOCLAIM drops them;
    the survivor says so (log, metric) and delivers the rest in order."""
    sync_redis.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    ids = [sync_redis.xadd(STREAM, {b"data": orjson.dumps(signal(100 + i))}) for i in range(6)]
    sync_redis.xreadgroup(GROUP, "dead-replica", {STREAM: ">"}, count=6)
    sync_redis.xdel(STREAM, ids[1], ids[3])
    proc = notifier_factory("n1")
    hook_receiver.wait_for(4, timeout_s=15)
    time.sleep(0.3)
    assert [r.json()["n"] for r in hook_receiver.requests] == [100, 102, 104, 105]
    assert int(sync_redis.xpending(STREAM, GROUP)["pending"]) == 0
    assert proc.metric("qs_notifier_bad_entries_total", {"reason": "trimmed"}) == 2
    assert any(e["event"] == "entries_trimmed_before_delivery" for e in proc.log_events())


def test_names_in_redis_that_are_not_utf8_stop_nothing(
    sync_redis: redis.Redis, hook_receiver: HttpReceiver, notifier_factory: NotifierFactory
) -> None:
    """Another program's consumer, group, replica entry and history epoch with bytes that
    are not UTF-8: the notifier delivers on, its stats keep running, no traceback (before:
    the stats task died and took the process down; the takeover and the epoch lookup
    raised UnicodeDecodeError in the delivery loop)."""
    sync_redis.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    sync_redis.xgroup_create(STREAM, b"odd-\xff-group", id="$")
    sync_redis.xgroup_createconsumer(STREAM, GROUP, b"odd-\xfe-consumer")
    sync_redis.zadd(
        notifier_replicas_key(DEFAULT_CHANNEL), {b"n1:\xff:x": time.time() * 1000 + 60_000}
    )
    sync_redis.hset(history_epoch_key(DEFAULT_CHANNEL), "epoch", b"\xff\xfe")
    proc = notifier_factory("n1", notifier_lease_ttl_s=0.5)
    for i in range(3):
        sync_redis.xadd(STREAM, {b"data": orjson.dumps(signal(200 + i))})
    hook_receiver.wait_for(3, timeout_s=15)
    time.sleep(5.5)  # a stats round after a lease TTL: groups, lag, namesakes
    assert proc.proc is not None and proc.proc.poll() is None, proc.logs()
    assert [r.json()["n"] for r in hook_receiver.requests] == [200, 201, 202]
    assert "Traceback" not in proc.log_path.read_text(), proc.logs()
    assert proc.metric("qs_redis_connected", {"loop": "stats"}) == 1
