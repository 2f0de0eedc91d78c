"""SIGTERM and SIGKILL at random moments: two ``python -m notifier`` replicas deliver two
destinations while signals are published; a seeded random schedule stops one replica every
0.4 to 1.2 s (SIGTERM or SIGKILL, whatever it is doing: mid-request, mid-retry, mid-takeover)
and starts it again. Checked: a SIGTERMed replica exits 0 within its grace, and in the end
every signal was accepted (a 2xx) by both destinations, so nothing was acknowledged that
was not delivered; repeats carry the same idempotency key and body; no traceback.

Bounded (about 35 s); deselect with ``-m "not notifier_stress"``; the seed is printed:
``QS_STRESS_SEED=<n> pytest ... -m notifier_stress -s`` runs one schedule again."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from common.constants import notifier_group
from common.publish import SignalPublisher
from tests.integration.notifier.conftest import NotifierFactory, signal, wait_for_group, write_two
from tests.support.receivers import HttpReceiver, Recorded, Reply
from tests.support.services import ServiceProcess

TOTAL = 800
PER_S = 40.0
GRACE_S = 4.0


@pytest.mark.notifier_stress
@pytest.mark.timeout(150)
async def test_random_sigterm_and_sigkill_never_hang_nor_ack_undelivered(
    redis_client: aioredis.Redis,
    publisher: SignalPublisher,
    hook_receiver: HttpReceiver,
    config_path: Path,
    notifier_factory: NotifierFactory,
) -> None:
    seed = int(os.environ.get("QS_STRESS_SEED", random.randrange(1_000_000)))
    print(f"stress seed {seed}")
    rng = random.Random(seed)
    write_two(
        config_path, hook_receiver.url, max_attempts=1000, backoff_initial_s=0.05, backoff_max_s=0.3
    )

    def answer(request: Recorded) -> Reply:
        # Mostly quick, sometimes slow (a kill lands mid-request), sometimes 503 (mid-retry).
        roll = rng.random()
        if roll < 0.05:
            return Reply(503)
        return Reply(200, delay_s=0.3 if roll < 0.15 else 0.005)

    hook_receiver.respond_with(answer)
    env = {"shutdown_grace_s": GRACE_S, "redis_backoff_max_s": 0.5}
    replicas: dict[str, ServiceProcess] = {c: notifier_factory(c, **env) for c in ("n1", "n2")}
    for name in ("hook-a", "hook-b"):
        await wait_for_group(redis_client, notifier_group(name))
    publishing = asyncio.create_task(_publish(publisher))
    stops = collections.Counter[str]()
    term_exit_s: list[float] = []
    while not publishing.done():
        await asyncio.sleep(rng.uniform(0.4, 1.2))
        name = rng.choice(sorted(replicas))
        proc = replicas[name]
        assert proc.proc is not None
        if rng.random() < 0.5:
            proc.kill()
            stops["SIGKILL"] += 1
        else:
            started = time.monotonic()
            code = await asyncio.to_thread(proc.terminate, GRACE_S + 5)
            term_exit_s.append(time.monotonic() - started)
            # Before its handlers are installed (still importing) SIGTERM ends it at once.
            booted = "notifier_started" in proc.log_path.read_text()
            assert code == 0 or (code == -15 and not booted), proc.logs()
            stops["SIGTERM"] += 1
        replicas[name] = notifier_factory(name, wait_ready=False, **env)
    await publishing
    hook_receiver.respond_with(lambda request: Reply(200))
    deadline = time.monotonic() + 60
    while not _all_accepted(hook_receiver):
        assert time.monotonic() < deadline, _missing(hook_receiver)
        await asyncio.sleep(0.2)
    accepted = _accepted(hook_receiver)
    repeats = {
        path: len(reqs) - len({r.headers["idempotency-key"] for r in reqs})
        for path, reqs in accepted.items()
    }
    print(
        f"stops {dict(stops)}; SIGTERM exit max {max(term_exit_s, default=0):.2f}s; "
        f"repeated 2xx deliveries {repeats}; requests {len(hook_receiver.requests)}"
    )
    assert max(term_exit_s, default=0) < GRACE_S + 1.0
    for reqs in accepted.values():
        bodies: dict[str, set[str]] = collections.defaultdict(set)
        for r in reqs:
            body = r.json()
            body.pop("offset", None)  # the same position, maybe under a new epoch prefix
            bodies[r.headers["idempotency-key"]].add(str(sorted(body.items())))
        assert all(len(b) == 1 for b in bodies.values())
    for proc in replicas.values():
        assert "Traceback" not in proc.log_path.read_text(), proc.logs()


async def _publish(publisher: SignalPublisher) -> None:
    for i in range(TOTAL):
        await publisher.publish(signal(i))
        await asyncio.sleep(1 / PER_S)


def _accepted(receiver: HttpReceiver) -> dict[str, list[Recorded]]:
    """Per destination, the complete requests answered 2xx."""
    out: dict[str, list[Recorded]] = collections.defaultdict(list)
    for request, reply in list(receiver.answered):
        whole = len(request.body) == int(request.headers["content-length"])
        if whole and 200 <= reply.status < 300:
            out[request.path].append(request)
    return out


def _all_accepted(receiver: HttpReceiver) -> bool:
    accepted = _accepted(receiver)
    return all(
        {r.json()["n"] for r in accepted.get(p, [])} == set(range(TOTAL)) for p in ("/a", "/b")
    )


def _missing(receiver: HttpReceiver) -> str:
    accepted = _accepted(receiver)
    gone = {
        p: sorted(set(range(TOTAL)) - {r.json()["n"] for r in accepted.get(p, [])})[:20]
        for p in ("/a", "/b")
    }
    return f"never accepted: {gone}"
