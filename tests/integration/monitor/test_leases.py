"""Symbol leases on a real Redis: fair shares, joiners, death and release."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common.constants import lease_key
from monitor.leases import LeaseManager

SYMBOLS = [f"S{i}" for i in range(6)]
TTL_S = 0.6


def manager(client: aioredis.Redis, name: str) -> LeaseManager:
    return LeaseManager(client, "qs-test", SYMBOLS, name, TTL_S)


async def settle(managers: list[LeaseManager], rounds: int = 4) -> None:
    for _ in range(rounds):
        for m in managers:
            await m.cycle()


def assert_exclusive_cover(managers: list[LeaseManager]) -> None:
    owned = [s for m in managers for s in m.owned]
    assert sorted(owned) == SYMBOLS, "every symbol owned exactly once"


async def test_replicas_split_fairly_and_a_joiner_gets_its_share(
    redis_client: aioredis.Redis,
) -> None:
    a, b = manager(redis_client, "a"), manager(redis_client, "b")
    await a.cycle()
    assert a.owned == set(SYMBOLS)  # alone: takes everything
    await settle([a, b])
    assert_exclusive_cover([a, b])
    assert len(a.owned) == len(b.owned) == 3
    c = manager(redis_client, "c")
    await settle([a, b, c])
    assert_exclusive_cover([a, b, c])
    assert sorted(len(m.owned) for m in (a, b, c)) == [2, 2, 2]
    for m in (a, b, c):
        for symbol in m.owned:
            assert await redis_client.get(lease_key("qs-test", symbol)) == m.replica_id.encode()


async def test_a_dead_replicas_symbols_are_taken_over_within_the_ttl(
    redis_client: aioredis.Redis,
) -> None:
    a, b, c = (manager(redis_client, n) for n in "abc")
    await settle([a, b, c])
    orphaned = set(c.owned)
    loop = asyncio.get_running_loop()
    died = loop.time()  # c stops renewing: as good as SIGKILL
    while not orphaned <= a.owned | b.owned:
        assert loop.time() - died < TTL_S * 2, "takeover too slow"
        await asyncio.sleep(TTL_S / 4)
        await settle([a, b], rounds=1)
    assert loop.time() - died <= TTL_S + 0.1
    assert_exclusive_cover([a, b])


async def test_release_hands_symbols_over_at_once(redis_client: aioredis.Redis) -> None:
    a, b = manager(redis_client, "a"), manager(redis_client, "b")
    await settle([a, b])
    await b.release()
    assert b.owned == set()
    await a.cycle()  # the very next renewal: b left the replica set, a's share is all
    assert a.owned == set(SYMBOLS)


async def test_renewal_notices_a_lease_lost_to_another_owner(
    redis_client: aioredis.Redis,
) -> None:
    a = manager(redis_client, "a")
    await a.cycle()
    await redis_client.set(lease_key("qs-test", "S0"), "intruder")
    changes = await a.cycle()
    assert "S0" in changes.lost and "S0" not in a.owned
