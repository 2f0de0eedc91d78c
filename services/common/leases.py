"""Leases in Redis: each item (a monitor's symbol, a notifier's destination) is worked by
exactly one replica at a time.

A lease is a key per item holding the owner's id. The configured TTL is the promise "a
dead replica's items are worked again within it": keys expire after ``KEY_TTL_FRACTION``
of it and owners renew every ``RENEW_FRACTION`` of it, so a lost renewal costs nothing,
and expiry plus the survivors' next cycle fits in the TTL.

Live replicas heartbeat into a sorted set, so each knows how many share the work and takes
at most ``ceil(items / replicas)``: a joining replica makes the others release their
surplus, and a dead one's leases expire and are picked up by the survivors. Every step is
one Lua script, so checking an owner and changing its lease never interleave.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

# Redis' own clock, so replicas with skewed clocks still agree on who is alive.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Heartbeat first in each cycle: a dead replica leaves the set just before its leases expire,
-- so survivors already count one replica fewer when they find its items free.
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2] * 10)
return redis.call('ZCARD', KEYS[1])
"""
_RENEW = """
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    held[#held + 1] = i
  end
end
return held
"""
_ACQUIRE = """
local got = {}
for i, key in ipairs(KEYS) do
  if #got >= tonumber(ARGV[3]) then break end
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then got[#got + 1] = i end
end
return got
"""
_RELEASE = """
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
if ARGV[2] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1
"""


KEY_TTL_FRACTION = 2 / 3
RENEW_FRACTION = 1 / 4


@dataclass(frozen=True)
class LeaseChanges:
    acquired: frozenset[str]
    lost: frozenset[str]
    released: frozenset[str]


class LeaseManager:
    """Leases on ``items``; ``lease_key(item)`` names each one's key, ``replicas_key`` the
    sorted set of live replicas that share them."""

    def __init__(
        self,
        client: aioredis.Redis,
        items: list[str],
        replica_id: str,
        ttl_s: float,
        *,
        lease_key: Callable[[str], str],
        replicas_key: str,
    ) -> None:
        self._items = list(items)
        self._lease_key = lease_key
        self._replicas_key = replicas_key
        self.replica_id = replica_id
        self._ttl_ms = max(1, int(ttl_s * KEY_TTL_FRACTION * 1000))
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._renew = client.register_script(_RENEW)
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self.owned: set[str] = set()
        self.replicas = 0

    def _keys(self, items: list[str]) -> list[str]:
        return [self._lease_key(item) for item in items]

    async def cycle(self) -> LeaseChanges:
        """Heartbeat, renew, then shed surplus or take free items up to a fair share."""
        self.replicas = int(
            await self._heartbeat(keys=[self._replicas_key], args=[self.replica_id, self._ttl_ms])
        )
        mine = sorted(self.owned)
        held = await self._renew(keys=self._keys(mine), args=[self.replica_id, self._ttl_ms])
        kept = {mine[i - 1] for i in held}
        lost = self.owned - kept
        self.owned = kept
        fair_share = math.ceil(len(self._items) / max(1, self.replicas))
        released: set[str] = set()
        acquired: set[str] = set()
        if len(kept) > fair_share:
            released = set(sorted(kept)[fair_share:])
            await self.release(released)
        elif len(kept) < fair_share:
            free = [s for s in self._items if s not in kept]
            # Random order, so replicas starting together don't all race for the same keys.
            random.shuffle(free)
            got = await self._acquire(
                keys=self._keys(free), args=[self.replica_id, self._ttl_ms, fair_share - len(kept)]
            )
            acquired = {free[i - 1] for i in got}
            self.owned |= acquired
        return LeaseChanges(frozenset(acquired), frozenset(lost), frozenset(released))

    async def release(self, items: set[str] | None = None) -> None:
        """Give up ``items`` (default: all, and leave the replica set) so others take over now."""
        leaving = items is None
        chosen = sorted(self.owned if items is None else items)
        await self._release(
            keys=[self._replicas_key, *self._keys(chosen)],
            args=[self.replica_id, "1" if leaving else "0"],
        )
        self.owned -= set(chosen)

    def drop_all(self) -> set[str]:
        """Forget every lease locally (they may have expired while Redis was unreachable)."""
        dropped, self.owned = self.owned, set()
        return dropped
