"""Redis faults while a message is in flight (after the receiver has it, before its XACK),
on a real ``python -m notifier`` and a real redis-server: every client connection killed
(the XACK fails), the consumer group destroyed, the stream deleted or trimmed to nothing,
Redis read-only (``REPLICAOF``, as after a failover: READONLY errors) for less and for more
than the lease TTL, Redis restarted with and without persistence. Hypothesis
picks the sequence of faults; each signal must arrive exactly once, in order, nothing
dead-lettered, and the process logs no traceback and no error while its metrics show the
reconnects."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.constants import DEFAULT_CHANNEL, dead_letters_key
from tests.integration.notifier.conftest import GROUP, STREAM, NotifierFactory, signal
from tests.support.receivers import HttpReceiver, Recorded, Reply
from tests.support.redis_server import AOF_ALWAYS, ProcessRedis, free_port, own_redis

READONLY_S = 0.6  # below the lease TTL (2 s): the same worker resumes
READONLY_LONG_S = 3.0  # above it: the leases expire locally, the worker is replaced
FAULTS = [
    "none",
    "kill_clients",
    "destroy_group",
    "delete_stream",
    "trim_stream",
    "readonly",
    "readonly_long",
    "restart",
]


def retrying(action: Callable[[], object], timeout_s: float = 10) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return action()
        except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def settled(client: redis.Redis) -> bool:
    try:
        groups = client.xinfo_groups(STREAM)
    except redis.RedisError:
        return False
    group = next((g for g in groups if g["name"] == GROUP.encode()), None)
    return group is not None and int(group["pending"]) == 0 and group["lag"] == 0


class Faults:
    """Applied by the receiver when a request arrives, i.e. between send and XACK."""

    def __init__(self, server: ProcessRedis) -> None:
        self.server = server
        self.client = redis.Redis.from_url(server.url)
        self.next: list[str] = []

    def answer(self, request: Recorded) -> Reply:
        if self.next:
            getattr(self, self.next.pop())()
        return Reply(200)

    def none(self) -> None:
        pass

    def kill_clients(self) -> None:
        self.client.client_kill_filter(_type="normal", skipme=True)

    def destroy_group(self) -> None:
        self.client.xgroup_destroy(STREAM, GROUP)

    def delete_stream(self) -> None:
        self.client.delete(STREAM)

    def trim_stream(self) -> None:
        self.client.xtrim(STREAM, maxlen=0)

    def readonly(self) -> None:
        self.client.replicaof("127.0.0.1", str(free_port()))
        threading.Timer(
            READONLY_S, lambda: retrying(lambda: self.client.replicaof("NO", "ONE"))
        ).start()

    def readonly_long(self) -> None:
        self.client.replicaof("127.0.0.1", str(free_port()))
        threading.Timer(
            READONLY_LONG_S, lambda: retrying(lambda: self.client.replicaof("NO", "ONE"))
        ).start()

    def restart(self) -> None:
        self.server.stop()
        self.server.start()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("persist", [False, True], ids=["no-persistence", "aof"])
def test_faults_between_send_and_xack_lose_nothing_and_repeat_nothing(
    persist: bool,
    hook_receiver: HttpReceiver,
    config_path: Path,
    notifier_factory: NotifierFactory,
) -> None:
    with own_redis(*(AOF_ALWAYS if persist else ())) as server:
        client = redis.Redis.from_url(server.url)
        faults = Faults(server)
        hook_receiver.respond_with(faults.answer)
        proc = notifier_factory("n1", redis_url=server.url, redis_backoff_max_s=0.5)
        proc.wait_for(lambda: settled(client), 20, "reading")
        numbers = itertools.count()
        sent: list[int] = []
        applied: list[str] = []

        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(st.lists(st.sampled_from(FAULTS), min_size=1, max_size=4))
        def check(chosen: list[str]) -> None:
            for fault in chosen:
                n = next(numbers)
                faults.next.append(fault)
                retrying(lambda n=n: client.xadd(STREAM, {"data": orjson.dumps(signal(n))}))
                sent.append(n)
                applied.append(fault)
                proc.wait_for(
                    lambda: len(hook_receiver.requests) >= len(sent) and settled(client),
                    20,
                    f"settled after {fault}",
                )

        check()
        time.sleep(READONLY_LONG_S + 0.2)  # a last read-only spell is over
        got = [r.json()["n"] for r in hook_receiver.requests]
        assert got == sent, applied  # every one, in order, none twice
        assert retrying(lambda: client.xlen(dead_letters_key(DEFAULT_CHANNEL))) == 0
        assert proc.proc is not None and proc.proc.poll() is None
        text = proc.log_path.read_text()
        assert "Traceback" not in text
        errors = [e for e in proc.log_events() if e.get("level") in ("error", "critical")]
        assert errors == [], text[-3000:]
        if set(applied) - {"none"}:
            assert proc.metric("qs_redis_reconnects_total", {"loop": "delivery"}) >= 1
        proc.wait_for(
            lambda: proc.metric("qs_redis_connected", {"loop": "delivery"}) == 1, 10, "up"
        )


@pytest.mark.timeout(60)
def test_a_lease_lost_with_a_redis_restart_and_regained_does_not_cut_the_delivery_off(
    hook_receiver: HttpReceiver, config_path: Path, notifier_factory: NotifierFactory
) -> None:
    """Redis restarts without persistence while the receiver takes its time: the lease
    key is gone, the same replica takes it again at its next cycle. The delivery in flight
    goes on and is not made again (before: the worker was cancelled mid-request and its
    successor delivered the signal a second time)."""
    with own_redis() as server:
        client = redis.Redis.from_url(server.url)

        restarted: list[bool] = []

        def answer(request: Recorded) -> Reply:
            if request.json()["n"] == 1 and not restarted:
                restarted.append(True)
                server.stop()
                server.start()
                time.sleep(1.5)  # three lease cycles (TTL 2 s, renewed every 0.5 s)
            return Reply(200)

        hook_receiver.respond_with(answer)
        proc = notifier_factory("n1", redis_url=server.url, redis_backoff_max_s=0.5)
        proc.wait_for(lambda: settled(client), 20, "reading")
        for n in range(3):
            retrying(lambda n=n: client.xadd(STREAM, {"data": orjson.dumps(signal(n))}))
            proc.wait_for(lambda n=n: len(hook_receiver.requests) > n and settled(client), 20, "on")
        time.sleep(0.5)
        assert [r.json()["n"] for r in hook_receiver.requests] == [0, 1, 2]
        events = [e["event"] for e in proc.log_events()]
        assert "delivery_cancelled" not in events
        assert any(e.get("regained") for e in proc.log_events() if e["event"] == "leases_changed")
