"""Symbol leases: each symbol is worked by exactly one replica at a time.

The mechanism (one Lua script per step, Redis' clock, fair shares) is ``common.leases``,
shared with the notifier's destination leases; here it is bound to the monitor's keys
(``common.constants.lease_key`` per symbol, ``replicas_key`` for the live replicas).
"""

from __future__ import annotations

from functools import partial

import redis.asyncio as aioredis

from common import leases
from common.constants import lease_key, replicas_key
from common.leases import KEY_TTL_FRACTION, RENEW_FRACTION, LeaseChanges

__all__ = ["KEY_TTL_FRACTION", "RENEW_FRACTION", "LeaseChanges", "LeaseManager"]


class LeaseManager(leases.LeaseManager):
    def __init__(
        self,
        client: aioredis.Redis,
        channel: str,
        symbols: list[str],
        replica_id: str,
        ttl_s: float,
    ) -> None:
        super().__init__(
            client,
            symbols,
            replica_id,
            ttl_s,
            lease_key=partial(lease_key, channel),
            replicas_key=replicas_key(channel),
        )
