"""Publish a signal exactly once: dedupe, history and Pub/Sub in one atomic Redis step."""

from __future__ import annotations

from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from common.constants import dedupe_key, history_key

StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]

# One script so the dedupe key, the history entry and the publish never disagree,
# even when two monitors race on a taken-over symbol.
_PUBLISH_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[1])
  redis.call('PUBLISH', KEYS[3], ARGV[1])
  return 1
end
return 0
"""


class SignalPublisher:
    def __init__(
        self,
        client: aioredis.Redis,
        channel: str,
        *,
        dedupe_ttl_ms: int = 24 * 3600 * 1000,
        history_maxlen: int = 10_000,
    ) -> None:
        self._client = client
        self._channel = channel
        self._dedupe_ttl_ms = dedupe_ttl_ms
        self._history_maxlen = history_maxlen
        self._script = client.register_script(_PUBLISH_ONCE)

    async def publish(self, signal: dict[str, Any]) -> bool:
        """Return True if published, False if this id was published before."""
        payload = orjson.dumps(signal)
        keys = [
            dedupe_key(self._channel, str(signal["id"])),
            history_key(self._channel),
            self._channel,
        ]
        result = await self._script(
            keys=keys, args=[payload, self._dedupe_ttl_ms, self._history_maxlen]
        )
        return bool(result)


async def latest_signals(client: aioredis.Redis, channel: str, limit: int) -> list[dict[str, Any]]:
    """The most recent signals from the history stream, newest first."""
    entries = await client.xrevrange(history_key(channel), count=limit)
    return [orjson.loads(fields[b"data"]) for _, fields in cast(StreamEntries, entries)]
