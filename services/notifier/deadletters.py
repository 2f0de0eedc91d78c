"""Dead letters: the messages a destination refused for good or after its retry budget.

One stream for every destination (``dead_letters_key(channel)``), one entry per message,
with the fields ``destination, entry_id, idempotency_key, data, error, attempts,
failed_at``. Recording one and acknowledging the history entry are one ``MULTI``, so a
message is never both lost and settled, nor recorded twice by one settle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from common.constants import dead_letters_key


@dataclass(frozen=True)
class DeadLetter:
    id: str
    destination: str
    entry_id: str
    idempotency_key: str
    data: str
    error: str
    attempts: int
    failed_at: float

    @classmethod
    def from_fields(cls, entry_id: str, fields: dict[bytes, bytes]) -> DeadLetter:
        text = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
        return cls(
            id=entry_id,
            destination=text.get("destination", ""),
            entry_id=text.get("entry_id", ""),
            idempotency_key=text.get("idempotency_key", ""),
            data=text.get("data", ""),
            error=text.get("error", ""),
            attempts=int(text.get("attempts", "0") or 0),
            failed_at=float(text.get("failed_at", "0") or 0),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "destination": self.destination,
            "entry_id": self.entry_id,
            "idempotency_key": self.idempotency_key,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
            "error": self.error,
            "data": self.data,
        }


class DeadLetters:
    def __init__(self, redis: aioredis.Redis, channel: str, maxlen: int) -> None:
        self.redis = redis
        self.key = dead_letters_key(channel)
        self.maxlen = maxlen

    async def record_and_ack(
        self,
        stream: str,
        group: str,
        letter: DeadLetter,
    ) -> None:
        """Append the dead letter and acknowledge its history entry, atomically."""
        fields = {
            "destination": letter.destination,
            "entry_id": letter.entry_id,
            "idempotency_key": letter.idempotency_key,
            "data": letter.data,
            "error": letter.error,
            "attempts": str(letter.attempts),
            "failed_at": f"{letter.failed_at:.3f}",
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.xack(stream, group, letter.entry_id)
            await pipe.execute()

    async def length(self) -> int:
        return int(await self.redis.xlen(self.key))

    async def list(self, destination: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Oldest first; ``destination`` narrows it."""
        found: list[DeadLetter] = []
        start = "-"
        while len(found) < limit:
            rows: Any = await self.redis.xrange(self.key, start, "+", count=500)
            if not rows:
                break
            for raw_id, fields in rows:
                letter = DeadLetter.from_fields(raw_id.decode(), fields)
                if destination is None or letter.destination == destination:
                    found.append(letter)
            start = f"({rows[-1][0].decode()}"
        return found[:limit]

    async def get(self, ids: Iterable[str]) -> dict[str, DeadLetter | None]:
        out: dict[str, DeadLetter | None] = {}
        for entry_id in ids:
            rows: Any = await self.redis.xrange(self.key, entry_id, entry_id)
            out[entry_id] = DeadLetter.from_fields(entry_id, rows[0][1]) if rows else None
        return out

    async def drop(self, ids: Iterable[str]) -> int:
        chosen = list(ids)
        if not chosen:
            return 0
        return int(await self.redis.xdel(self.key, *chosen))


def now_s() -> float:
    return time.time()
