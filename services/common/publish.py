"""Publish a signal exactly once: dedupe, history and Pub/Sub in one atomic Redis step.

The id of the history-stream entry travels with the signal as ``offset``: clients present
the last one they saw to recover what they missed (docs/delivery.md).
"""

from __future__ import annotations

from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from common.constants import OFFSET_FIELD, dedupe_key, history_key

StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
DAY_MS = 24 * 3600 * 1000

# One script, so the dedupe key, the history entry and the publish never disagree, even
# when two monitors race on a taken-over symbol. The offset is spliced into the JSON text
# rather than re-encoded, so every other byte of the payload stays as the caller made it.
_PUBLISH_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[1])
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[4])
if cutoff > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', cutoff)
end
local payload = ARGV[1]
local head = '{"' .. ARGV[5] .. '":"' .. id .. '"'
if payload == '{}' then
  payload = head .. '}'
else
  payload = head .. ',' .. string.sub(payload, 2)
end
redis.call('PUBLISH', KEYS[3], payload)
return id
"""


class SignalPublisher:
    def __init__(
        self,
        client: aioredis.Redis,
        channel: str,
        *,
        dedupe_ttl_ms: int = DAY_MS,
        history_maxlen: int = 10_000,
        history_max_age_ms: int = DAY_MS,
    ) -> None:
        self._client = client
        self._channel = channel
        self._args = (dedupe_ttl_ms, history_maxlen, history_max_age_ms, OFFSET_FIELD)
        self._script = client.register_script(_PUBLISH_ONCE)

    async def publish(self, signal: dict[str, Any]) -> str | None:
        """The signal's offset if published now, None if its id was published before."""
        keys = [
            dedupe_key(self._channel, str(signal["id"])),
            history_key(self._channel),
            self._channel,
        ]
        offset = await self._script(keys=keys, args=[orjson.dumps(signal), *self._args])
        return offset.decode() if offset else None


def entry_signal(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A history entry as clients receive it live: the payload plus its offset."""
    signal: dict[str, Any] = {OFFSET_FIELD: entry_id.decode()}
    signal.update(orjson.loads(fields[b"data"]))
    return signal


async def latest_signals(client: aioredis.Redis, channel: str, limit: int) -> list[dict[str, Any]]:
    """The most recent signals from the history stream, newest first."""
    entries = await client.xrevrange(history_key(channel), count=limit)
    return [entry_signal(eid, fields) for eid, fields in cast(StreamEntries, entries)]
