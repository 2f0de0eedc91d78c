"""Publish a signal exactly once: dedupe, history and Pub/Sub in one atomic Redis step.

The position of the history-stream entry ("<epoch>:<ms>-<seq>", common.offsets) travels
with the signal as ``offset``: clients present the last one they saw to recover what they
missed (docs/delivery.md). The epoch names the history: it changes when Redis has lost
entries, so a resume from before the loss is never told it is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from common.constants import OFFSET_FIELD, dedupe_key, history_epoch_key, history_key
from common.offsets import (
    ZERO,
    Offset,
    Position,
    format_position,
    new_epoch,
    parse_offset,
    parse_position,
)
from common.settings import HistorySettings

StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
DAY_MS = 24 * 3600 * 1000

# The epoch rule, shared by both scripts below so it is written once and always runs in the
# same atomic step as the stream it describes. The hash at ``epoch_key`` holds
# epoch (current token), base (stream id after which its entries start) and prev.
#   ensure_epoch(stream, epoch_key, candidate, known)
#     candidate: a fresh token made by the caller (Lua has no good randomness);
#     known: the caller's last position "E:ms-seq", or "".
#   - no hash (first use, FLUSHALL, restart without persistence): a new epoch starting
#     after the stream's last-generated-id ("0-0" if there is no stream), prev "";
#   - known is in the current epoch but beyond the stream's last-generated-id: Redis lost
#     writes the caller saw (failover to a stale replica, AOF everysec): a new epoch,
#     prev = the old one. A caller whose known epoch is already stale changes nothing (CAS).
#   - otherwise the epoch stands. Returns {epoch, base, prev}.
# Ids are compared as decimal strings: their parts go past Lua's 2^53 exact integers.
_EPOCH_RULE = """
local function num_gt(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local function id_gt(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if ams ~= bms then return num_gt(ams, bms) end
  return num_gt(aseq, bseq)
end
local function last_id(stream)
  if redis.call('EXISTS', stream) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
local function ensure_epoch(stream, epoch_key, candidate, known)
  local cur = redis.call('HMGET', epoch_key, 'epoch', 'base', 'prev')
  if not cur[1] then
    local base = last_id(stream)
    redis.call('HSET', epoch_key, 'epoch', candidate, 'base', base, 'prev', '')
    return {candidate, base, ''}
  end
  local known_epoch, known_id = string.match(known, '^([0-9a-z]+):(%d+%-%d+)$')
  if known_epoch == cur[1] then
    local last = last_id(stream)
    if id_gt(known_id, last) then
      redis.call('HSET', epoch_key, 'epoch', candidate, 'base', last, 'prev', cur[1])
      return {candidate, last, cur[1]}
    end
  end
  return {cur[1], cur[2] or '0-0', cur[3] or ''}
end
"""

# KEYS: stream, epoch hash. ARGV: candidate epoch, known position (see the rule above).
_ENSURE_EPOCH = _EPOCH_RULE + "return ensure_epoch(KEYS[1], KEYS[2], ARGV[1], ARGV[2])\n"

# One script, so the dedupe key, the epoch, the history entry and the publish never disagree,
# even when two monitors (or a monitor and the HTTP API) race on the same id. The dedupe key
# holds the position it was published at, so a repeated id is answered with the original
# position (an HTTP publisher retrying after a lost reply learns where its signal went).
# Being one script, the GET below and the SET after the XADD cannot interleave with another
# publish of the same id. The position is spliced into the JSON text rather than
# re-encoded, so every other byte of the payload stays as the caller made it.
# KEYS: dedupe key, stream, channel, epoch hash.
# ARGV: payload, dedupe TTL ms, MAXLEN, max age ms, offset field, candidate epoch, known.
# Returns {0, position} when published now, {1, stored} for a repeated id (stored is "1"
# for keys written before positions were stored).
_PUBLISH_ONCE = (
    _EPOCH_RULE
    + """
local seen = redis.call('GET', KEYS[1])
if seen then
  return {1, seen}
end
local epoch = ensure_epoch(KEYS[2], KEYS[4], ARGV[6], ARGV[7])[1]
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[1])
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[4])
if cutoff > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', cutoff)
end
local position = epoch .. ':' .. id
redis.call('SET', KEYS[1], position, 'PX', ARGV[2])
local payload = ARGV[1]
local head = '{"' .. ARGV[5] .. '":"' .. position .. '"'
if payload == '{}' then
  payload = head .. '}'
else
  payload = head .. ',' .. string.sub(payload, 2)
end
redis.call('PUBLISH', KEYS[3], payload)
return {0, position}
"""
)


@dataclass(frozen=True)
class Epoch:
    """The history's current epoch: its token, where its entries start, the one before it."""

    epoch: str
    base: Offset
    prev: str | None


async def ensure_epoch(client: aioredis.Redis, channel: str, known: Position | None) -> Epoch:
    """The current epoch, created or renewed by the rule above given what the caller saw."""
    script = client.register_script(_ENSURE_EPOCH)
    known_text = str(known) if known is not None and known.epoch is not None else ""
    keys = [history_key(channel), history_epoch_key(channel)]
    epoch, base, prev = await script(keys=keys, args=[new_epoch(), known_text])
    return Epoch(epoch.decode(), parse_offset(base.decode()) or ZERO, prev.decode() or None)


@dataclass(frozen=True)
class Published:
    """What the script did with one signal: its position, and whether it was there before.

    ``position`` is None only for a duplicate whose dedupe key predates stored positions.
    """

    position: str | None
    duplicate: bool


def _published(reply: list[bytes | int]) -> Published:
    flag, stored = reply
    text = stored.decode() if isinstance(stored, bytes) else str(stored)
    position = text if parse_position(text) is not None else None
    return Published(position, duplicate=bool(int(flag)))


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
        #: The position of the last signal published here: the script compares it with the
        #: stream, so writes Redis lost after acknowledging them start a new epoch.
        self.position = ""

    @classmethod
    def configured(
        cls, client: aioredis.Redis, channel: str, history: HistorySettings
    ) -> SignalPublisher:
        """A publisher with the retention and dedupe every publisher must share."""
        return cls(
            client,
            channel,
            dedupe_ttl_ms=history.dedupe_ttl_s * 1000,
            history_maxlen=history.history_maxlen,
            history_max_age_ms=history.history_max_age_s * 1000,
        )

    def _call(self, signal: dict[str, Any]) -> tuple[list[str], list[bytes | str | int]]:
        keys = [
            dedupe_key(self._channel, str(signal["id"])),
            history_key(self._channel),
            self._channel,
            history_epoch_key(self._channel),
        ]
        return keys, [orjson.dumps(signal), *self._args, new_epoch(), self.position]

    def _note(self, result: Published) -> Published:
        if not result.duplicate and result.position is not None:
            self.position = result.position
        return result

    async def publish(self, signal: dict[str, Any]) -> str | None:
        """The signal's position if published now, None if its id was published before."""
        result = await self.publish_one(signal)
        return None if result.duplicate else result.position

    async def publish_one(self, signal: dict[str, Any]) -> Published:
        keys, args = self._call(signal)
        return self._note(_published(await self._script(keys=keys, args=args)))

    async def publish_batch(self, signals: Sequence[dict[str, Any]]) -> list[Published]:
        """Publish ``signals`` in order, all in one MULTI/EXEC round trip.

        MULTI/EXEC rather than a plain pipeline: Redis runs the queued scripts only once it
        has the whole EXEC, so a connection lost half-way publishes none of them, never a
        prefix. A script Redis does not know (after a restart or SCRIPT FLUSH) fails every
        item alike (same script), so loading it and sending the batch again is safe.
        """
        try:
            return await self._batch(signals)
        except NoScriptError:
            await self._client.script_load(_PUBLISH_ONCE)
            return await self._batch(signals)

    async def _batch(self, signals: Sequence[dict[str, Any]]) -> list[Published]:
        sha = self._script.sha
        async with self._client.pipeline(transaction=True) as pipe:
            for signal in signals:
                keys, args = self._call(signal)
                pipe.evalsha(sha, len(keys), *keys, *args)
            replies = await pipe.execute()
        return [self._note(_published(reply)) for reply in replies]


def entry_signal(epoch: str, entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A history entry as clients receive it live: the payload plus its position."""
    offset = parse_offset(entry_id.decode()) or ZERO
    signal: dict[str, Any] = {OFFSET_FIELD: format_position(epoch, offset)}
    signal.update(orjson.loads(fields[b"data"]))
    return signal


async def latest_signals(client: aioredis.Redis, channel: str, limit: int) -> list[dict[str, Any]]:
    """The most recent signals from the history stream, newest first.

    The epoch is read first: if it changes before the entries are read, they carry the older
    token, and a resume from one is told "epoch changed" - cautious, never falsely complete.
    """
    epoch = await ensure_epoch(client, channel, None)
    entries = await client.xrevrange(history_key(channel), count=limit)
    return [entry_signal(epoch.epoch, eid, f) for eid, f in cast(StreamEntries, entries)]
