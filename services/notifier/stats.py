"""How far each destination is behind the stream, and how many dead letters wait.

Every replica computes the same values from Redis (for every configured destination, not
only its own), so a replica that is stuck cannot hide its destination's lag: aggregate
with ``max``.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from common.constants import history_key, notifier_group
from notifier.deadletters import DeadLetters
from notifier.metrics import NotifierMetrics

#: When Redis cannot say a group's lag (entries were trimmed or deleted), count at most
#: this many entries after its position.
LAG_SCAN_MAX = 10_000


class LagStats:
    def __init__(
        self,
        redis: aioredis.Redis,
        channel: str,
        destinations: list[str],
        dead_letters: DeadLetters,
        metrics: NotifierMetrics,
    ) -> None:
        self.redis = redis
        self.stream = history_key(channel)
        self.destinations = destinations
        self.dead_letters = dead_letters
        self.metrics = metrics

    async def refresh(self) -> None:
        groups = await self._groups()
        seconds, micros = await self.redis.time()
        now_ms = seconds * 1000 + micros // 1000
        for name in self.destinations:
            group = groups.get(notifier_group(name))
            entries, oldest_ms = (0, None) if group is None else await self._lag(group)
            self.metrics.lag_entries.labels(name).set(entries)
            age = 0.0 if oldest_ms is None else max(0.0, (now_ms - oldest_ms) / 1000)
            self.metrics.lag_seconds.labels(name).set(age)
        self.metrics.dead_letter_entries.set(await self.dead_letters.length())

    async def _groups(self) -> dict[str, dict[str, Any]]:
        if not await self.redis.exists(self.stream):
            return {}
        rows: Any = await self.redis.xinfo_groups(self.stream)
        return {_text(r["name"]): r for r in rows}

    async def _lag(self, group: dict[str, Any]) -> tuple[int, int | None]:
        """(undelivered entries, ms timestamp of the oldest), from the group's position."""
        pending = int(group["pending"])
        last = _text(group["last-delivered-id"])
        lag = group.get("lag")
        if lag is None:
            after: Any = await self.redis.xrange(self.stream, f"({last}", "+", count=LAG_SCAN_MAX)
            lag = len(after)
        oldest: str | None = None
        if pending:
            summary: Any = await self.redis.xpending(self.stream, _text(group["name"]))
            oldest = _text(summary["min"]) if summary["min"] else None
        elif int(lag):
            first: Any = await self.redis.xrange(self.stream, f"({last}", "+", count=1)
            oldest = _text(first[0][0]) if first else None
        return int(lag) + pending, None if oldest is None else int(oldest.split("-", 1)[0])


async def namesakes(
    redis: aioredis.Redis, replicas_key: str, consumer: str, replica_id: str
) -> list[str]:
    """Other live replicas using this replica's consumer name (``<consumer>:<pid>:<hex>``).

    Two would take each other's pending entries for their own at a takeover, delivering an
    entry still in flight elsewhere: in-order delivery then no longer holds.
    """
    members: Any = await redis.zrange(replicas_key, 0, -1)
    others = (_text(m) for m in members)
    return [m for m in others if m != replica_id and m.rsplit(":", 2)[0] == consumer]


def _text(value: object) -> str:
    # Names in Redis are anyone's bytes: one that is not UTF-8 must not stop a loop.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
