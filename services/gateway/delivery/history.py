"""Reading the signal history stream: epoch, tail, ranges for backfill and recovery, stats.

Every read is retried a few times with a short backoff before its error is raised: after a
Redis restart or failover the first command on a pooled connection can fail although the
next one would succeed, and a resuming client must not be told "incomplete" for that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.constants import history_key
from common.logging import get_logger
from common.offsets import ZERO, Offset, Position, format_offset, parse_offset
from common.publish import Epoch, StreamEntries, ensure_epoch

log = get_logger(__name__)

PAGE = 500
#: Pauses between attempts (so 5 attempts in ~1.8 s): long enough for a pool to reconnect or
#: a sentinel to name the new master, short enough that a resuming client is not kept waiting.
RETRY_DELAYS_S = (0.05, 0.2, 0.5, 1.0)
#: No new attempt starts after this long (a hung Redis: each attempt waits its timeout).
RETRY_BUDGET_S = 3.0
#: Errors another attempt can cure (a dropped connection, a timeout, a demoted master);
#: BusyLoadingError (Redis still loading its AOF) is a ConnectionError.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OSError,
)

T = TypeVar("T")


async def retrying(op: Callable[[], Awaitable[T]], delays: tuple[float, ...] = RETRY_DELAYS_S) -> T:
    """``op()``, tried again after each delay while it fails with a transient error.

    The command client already retries a dropped connection (common/redis.py); this layer
    adds what that does not cover (a demoted master's READONLY, an AOF still loading for a
    second or two). Retries stop once ``RETRY_BUDGET_S`` has passed, so the two layers
    together cannot keep a resuming client waiting much longer than one command's bound.
    """
    deadline = time.monotonic() + RETRY_BUDGET_S
    for delay in delays:
        try:
            return await op()
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.info("history_read_retry", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
    return await op()


def start_after(known: Position, epoch: Epoch) -> Offset:
    """Where ``epoch``'s entries not yet seen by someone at ``known`` begin.

    Same epoch: right after ``known``. The epoch just before: whichever comes first of
    ``known`` and the base (entries up to the base survived; past it, they were lost).
    Any other (or no) epoch: the base, since nothing older can be vouched for.
    """
    if known.epoch == epoch.epoch:
        return known.offset
    if known.epoch is not None and known.epoch == epoch.prev:
        return min(known.offset, epoch.base)
    return epoch.base


@dataclass(frozen=True)
class StreamStats:
    length: int
    oldest_age_s: float
    oldest: Offset | None
    #: Whether retention ever removed entries (Redis 7 counts them; older: assume so).
    trimmed: bool

    def covers(self, since: Offset) -> bool:
        """Whether every entry after ``since`` is still retained.

        Trimming removes the oldest entries, so the stream is complete after ``since`` when
        nothing was trimmed or the client already has the oldest retained entry.
        """
        return not self.trimmed or (self.oldest is not None and since >= self.oldest)


class History:
    def __init__(self, client: aioredis.Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._key = history_key(channel)

    async def epoch(self, known: Position | None) -> Epoch:
        """The current epoch; ``known`` (a position this replica saw) can reveal lost writes."""
        return await retrying(lambda: ensure_epoch(self._client, self._channel, known))

    async def tail(self) -> Offset:
        """Offset of the newest entry, (0, 0) when the stream is empty."""
        entries = cast(
            StreamEntries, await retrying(lambda: self._client.xrevrange(self._key, count=1))
        )
        newest = parse_offset(entries[0][0].decode()) if entries else None
        return newest or ZERO

    async def read(
        self, after: Offset, until: Offset | None = None
    ) -> AsyncIterator[tuple[Offset, bytes]]:
        """Entries with ``after < offset <= until``, oldest first, paged."""
        cursor = after
        end = format_offset(until) if until else "+"
        while True:
            page = await self._page(cursor, end)
            for entry_id, fields in page:
                offset = parse_offset(entry_id.decode())
                if offset is not None:
                    cursor = offset
                    yield offset, fields[b"data"]
            if len(page) < PAGE:
                return

    async def _page(self, cursor: Offset, end: str) -> StreamEntries:
        start = f"({format_offset(cursor)}"
        page = await retrying(
            lambda: self._client.xrange(self._key, min=start, max=end, count=PAGE)
        )
        return cast(StreamEntries, page)

    async def stats(self) -> StreamStats | None:
        """Length, age of the oldest entry and trim mark; None if the stream does not exist."""
        try:
            info: dict[Any, Any] = await retrying(lambda: self._client.xinfo_stream(self._key))
        except ResponseError:
            return None
        first = info.get("first-entry")
        oldest = parse_offset(first[0].decode()) if first else None
        age = time.time() - oldest[0] / 1000 if oldest else 0.0
        length = int(info.get("length", 0))
        added = info.get("entries-added")
        trimmed = added is None or int(added) > length
        return StreamStats(length, max(0.0, age), oldest, trimmed)
