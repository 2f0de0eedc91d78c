"""Reading the signal history stream: tail, ranges for backfill and recovery, stats."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.constants import history_key
from common.publish import StreamEntries
from common.schema import Offset, format_offset, parse_offset

PAGE = 500


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
        self._key = history_key(channel)

    async def tail(self) -> Offset:
        """Offset of the newest entry, (0, 0) when the stream is empty."""
        entries = cast(StreamEntries, await self._client.xrevrange(self._key, count=1))
        newest = parse_offset(entries[0][0].decode()) if entries else None
        return newest or (0, 0)

    async def read(
        self, after: Offset, until: Offset | None = None
    ) -> AsyncIterator[tuple[Offset, bytes]]:
        """Entries with ``after < offset <= until``, oldest first, paged."""
        cursor = after
        end = format_offset(until) if until else "+"
        while True:
            page = cast(
                StreamEntries,
                await self._client.xrange(
                    self._key, min=f"({format_offset(cursor)}", max=end, count=PAGE
                ),
            )
            for entry_id, fields in page:
                offset = parse_offset(entry_id.decode())
                if offset is not None:
                    cursor = offset
                    yield offset, fields[b"data"]
            if len(page) < PAGE:
                return

    async def stats(self) -> StreamStats | None:
        """Length, age of the oldest entry and trim mark; None if the stream does not exist."""
        try:
            info: dict[Any, Any] = await self._client.xinfo_stream(self._key)
        except ResponseError:
            return None
        first = info.get("first-entry")
        oldest = parse_offset(first[0].decode()) if first else None
        age = time.time() - oldest[0] / 1000 if oldest else 0.0
        length = int(info.get("length", 0))
        added = info.get("entries-added")
        trimmed = added is None or int(added) > length
        return StreamStats(length, max(0.0, age), oldest, trimmed)
