"""One destination's consumer group on the history stream: read in order, claim a dead
replica's entries, acknowledge, hand back.

The group (``notifier_group(name)``) is created at the stream's end (``$``) the first
time, so a new destination starts with new signals rather than the whole history. Only the
lease holder reads the group (``notifier.service``), so "in stream order" holds across
replicas as long as a takeover first settles what the previous holder left pending:
``take_over`` claims it (``XAUTOCLAIM``) once idle for ``claim_idle_ms`` (an entry still
in flight on a holder that is stopping is idle for less) and reads nothing new before
no other consumer has anything pending. Then this consumer's own pending entries come
first (``XREADGROUP ... 0``), in id order, and only then new ones (``>``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.constants import history_key, notifier_group
from common.logging import get_logger

log = get_logger(__name__)

#: Pending entries are claimed and handed back in pages of this many.
PAGE = 100
#: XCLAIM ... IDLE given to entries a stopping holder hands back: older than any
#: ``claim_idle_ms``, so the next holder claims them at once.
HANDED_BACK_IDLE_MS = 2**31
#: How long a blocking read waits for new entries (below the client's socket timeout).
BLOCK_MS = 1000


@dataclass(frozen=True)
class Entry:
    id: str
    #: The ``data`` field; None when the entry has none (or is gone: ``deleted``).
    data: bytes | None
    #: Pending but no longer in the stream (trimmed or deleted before delivery).
    deleted: bool = False
    #: The entry's field names, for the log line of one without ``data``.
    fields: tuple[str, ...] = ()


def is_missing_group(exc: ResponseError) -> bool:
    return str(exc).startswith("NOGROUP")


class StreamConsumer:
    def __init__(
        self,
        redis: aioredis.Redis,
        channel: str,
        destination: str,
        consumer: str,
        *,
        claim_idle_ms: int,
        count: int,
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.stream = history_key(channel)
        self.group = notifier_group(destination)
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.count = count
        #: The last entry settled here: a group Redis lost is recreated from it.
        self.last_id: str | None = None
        # Where the next read of our own pending entries starts; None: read new ones.
        self._pending_from: str | None = "0"
        #: Pending entries XAUTOCLAIM found deleted from the stream (counted by the worker).
        self.deleted_claimed = 0
        #: Entries settled but not yet confirmed by Redis, with what was decided
        #: (``notifier.delivery.Settled``): kept here because this object outlives workers.
        self.unconfirmed: dict[str, Any] = {}

    async def ensure_group(self) -> None:
        """Create the group if missing: at the stream's end the first time, after the last
        settled entry when Redis lost it (a restart without persistence)."""
        start = self.last_id or "$"
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        else:
            log.info("consumer_group_created", group=self.group, start=start)

    async def take_over(self, stopping: asyncio.Event) -> int:
        """Claim what other consumers left pending; wait while any is still in flight.

        Returns the number of entries claimed. Consumers left with nothing pending are
        deleted, so the group does not collect one per pod that ever ran.
        """
        claimed = 0
        while True:
            claimed += await self._claim_idle()
            others = await self._others_pending()
            if not others or stopping.is_set():
                break
            # An entry still in flight elsewhere: it is acked soon, or idles into a claim.
            await asyncio.sleep(min(1.0, self.claim_idle_ms / 4000))
        await self._forget_idle_consumers()
        self.reread_pending()
        if claimed:
            log.info("pending_claimed", group=self.group, entries=claimed)
        return claimed

    async def _claim_idle(self) -> int:
        cursor, claimed = "0-0", 0
        while True:
            reply: Any = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, cursor, count=PAGE
            )
            cursor = _text(reply[0])
            claimed += len(reply[1])
            gone = reply[2] if len(reply) > 2 else []
            if gone:
                # Redis dropped these from the pending list: trimmed before anyone delivered them.
                self.deleted_claimed += len(gone)
                log.warning(
                    "entries_trimmed_before_delivery",
                    group=self.group,
                    entries=[_text(i) for i in gone[:10]],
                    count=len(gone),
                )
            if cursor == "0-0":
                return claimed

    async def _others_pending(self) -> dict[str, int]:
        summary: Any = await self.redis.xpending(self.stream, self.group)
        return {
            _text(c["name"]): int(c["pending"])
            for c in summary["consumers"]
            if _text(c["name"]) != self.consumer and int(c["pending"]) > 0
        }

    async def _forget_idle_consumers(self) -> None:
        consumers: Any = await self.redis.xinfo_consumers(self.stream, self.group)
        for c in consumers:
            raw = c["name"]  # as stored: a name that is not UTF-8 is deleted too
            if _text(raw) != self.consumer and int(c["pending"]) == 0:
                await self.redis.xgroup_delconsumer(self.stream, self.group, raw)

    def reread_pending(self) -> None:
        """Read our own pending entries again before new ones (after a lost connection a
        read may have been assigned to us without reaching us)."""
        self._pending_from = "0"

    async def read(self) -> list[Entry]:
        """The next entries in order: our own pending ones first, then new ones (blocking
        up to ``BLOCK_MS``)."""
        if self._pending_from is not None:
            entries = await self._read(self._pending_from, block=None)
            if entries:
                self._pending_from = entries[-1].id
                return entries
            self._pending_from = None
        return await self._read(">", block=BLOCK_MS)

    async def _read(self, start: str, block: int | None) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=self.count, block=block
        )
        if not reply:
            return []
        _, raw = reply[0]
        return [_entry(i, fields) for i, fields in raw]

    async def ack(self, entry_id: str) -> None:
        await self.redis.xack(self.stream, self.group, entry_id)
        self.last_id = entry_id

    async def hand_back(self) -> int:
        """Mark our pending entries long idle, so the next holder claims them at once."""
        handed = 0
        start = "-"
        while True:
            rows: Any = await self.redis.xpending_range(
                self.stream, self.group, start, "+", PAGE, consumername=self.consumer
            )
            ids: list[Any] = [_text(r["message_id"]) for r in rows]
            if not ids:
                return handed
            await self.redis.xclaim(
                self.stream,
                self.group,
                self.consumer,
                0,
                ids,
                idle=HANDED_BACK_IDLE_MS,
                justid=True,
            )
            handed += len(ids)
            start = f"({ids[-1]}"


def _entry(raw_id: object, fields: dict[bytes, bytes] | None) -> Entry:
    if fields is None:
        return Entry(_text(raw_id), None, deleted=True)
    names = tuple(k.decode(errors="replace") for k in list(fields)[:10])
    return Entry(_text(raw_id), fields.get(b"data"), fields=names)


def _text(value: object) -> str:
    # Names in Redis are anyone's bytes: one that is not UTF-8 must not stop a loop.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
