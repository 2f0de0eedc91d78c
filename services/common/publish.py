"""Publish a signal exactly once: dedupe, history and Pub/Sub in one atomic Redis step.

The position of the history-stream entry ("<epoch>:<ms>-<seq>", common.offsets) travels
with the signal as ``offset``: clients present the last one they saw to recover what they
missed (docs/delivery.md). The epoch names the history: it changes when Redis has lost
entries, so a resume from before the loss is never told it is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

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

# One script for a whole batch, so for each signal the dedupe key, the epoch, the history
# entry and the publish never disagree, even when two monitors (or a monitor and the HTTP
# API) race on the same id; a single signal is a batch of one. Each dedupe key holds the
# position its signal was published at, so a repeated id is answered with the original
# position (an HTTP publisher retrying after a lost reply learns where its signal went).
# Being one script, each GET and the SET after its XADD cannot interleave with another
# publish of the same id, and Redis runs the script only once it has all of it: a
# connection lost half-way publishes none of the batch, never a prefix. The epoch is settled
# once, on the first new signal, as it was per signal before (a later one would find the
# caller's known position in the old epoch and change nothing). The position is spliced
# into the JSON text rather than re-encoded, so every other byte of a payload stays as the
# caller made it.
# KEYS: stream, channel, epoch hash, then one dedupe key per signal.
# ARGV: dedupe TTL ms, MAXLEN, max age ms, offset field, candidate epoch, known, then one
# payload per signal. Returns per signal {0, position} when published now, {1, stored} for a
# repeated id (stored is "1" for keys written before positions were stored).
_PUBLISH_BATCH = (
    _EPOCH_RULE
    + """
local out = {}
local epoch = nil
for i = 4, #KEYS do
  local seen = redis.call('GET', KEYS[i])
  if seen then
    out[#out + 1] = {1, seen}
  else
    if not epoch then epoch = ensure_epoch(KEYS[1], KEYS[3], ARGV[5], ARGV[6])[1] end
    local payload = ARGV[i + 3]
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', payload)
    local position = epoch .. ':' .. id
    redis.call('SET', KEYS[i], position, 'PX', ARGV[1])
    local head = '{"' .. ARGV[4] .. '":"' .. position .. '"'
    if payload == '{}' then
      payload = head .. '}'
    else
      payload = head .. ',' .. string.sub(payload, 2)
    end
    redis.call('PUBLISH', KEYS[2], payload)
    out[#out + 1] = {0, position}
  end
end
if epoch then
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[3])
  if cutoff > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', cutoff)
  end
end
return out
"""
)


class Companion(Protocol):
    """Other writes that travel in a batch's round trip, ahead of its signals.

    The monitor sends its bars and scores this way (monitor.bars, monitor.scoring), so one
    bar close costs one round trip, and a client that hears a signal finds its bar stored.
    """

    def stage(self, pipe: Pipeline) -> int:
        """Queue commands on ``pipe``; how many (0: nothing to write now)."""
        ...

    def settle(self, replies: Sequence[Any] | BaseException) -> None:
        """After a ``stage`` that queued commands: their replies (an exception object for
        a command that failed), or the error that lost the whole round trip (they may or
        may not have run)."""
        ...


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
        self._script = client.register_script(_PUBLISH_BATCH)
        self._script_known = False
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

    def _note(self, result: Published) -> Published:
        if not result.duplicate and result.position is not None:
            self.position = result.position
        return result

    async def publish(self, signal: dict[str, Any]) -> str | None:
        """The signal's position if published now, None if its id was published before."""
        result = await self.publish_one(signal)
        return None if result.duplicate else result.position

    async def publish_one(self, signal: dict[str, Any]) -> Published:
        return (await self.publish_batch([signal]))[0]

    async def publish_batch(
        self, signals: Sequence[dict[str, Any]], companions: Sequence[Companion] = ()
    ) -> list[Published]:
        """Publish ``signals`` in order with one script call, in one round trip.

        ``companions`` stage their own commands ahead of the script in the same pipeline
        (not a transaction: each signal's atomicity is the script's). A script Redis does
        not know (after a restart or SCRIPT FLUSH) did nothing, so the signals alone are
        sent again with its text.
        """
        pipe = self._client.pipeline(transaction=False)
        staged = [(c, n) for c in companions if (n := c.stage(pipe))]
        if signals:
            self._stage(pipe, signals)
        elif not staged:
            return []
        try:
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for companion, _ in staged:
                companion.settle(exc)
            raise
        start = 0
        for companion, count in staged:
            companion.settle(replies[start : start + count])
            start += count
        if not signals:
            return []
        reply = replies[-1]
        if isinstance(reply, NoScriptError):
            self._script_known = False
            retry = self._client.pipeline(transaction=False)
            self._stage(retry, signals)
            reply = (await retry.execute(raise_on_error=False))[0]
        if isinstance(reply, Exception):
            raise reply
        self._script_known = True
        return [self._note(_published(item)) for item in reply]

    def _stage(self, pipe: Pipeline, signals: Sequence[dict[str, Any]]) -> None:
        keys, args = self._call(signals)
        # The script's text until Redis is known to hold it (it caches what EVAL runs),
        # then its SHA: loading it never costs a round trip of its own.
        if self._script_known:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        else:
            pipe.eval(_PUBLISH_BATCH, len(keys), *keys, *args)

    def _call(self, signals: Sequence[dict[str, Any]]) -> tuple[list[str], list[EncodableT]]:
        channel = self._channel
        keys = [history_key(channel), channel, history_epoch_key(channel)]
        keys += [dedupe_key(channel, str(signal["id"])) for signal in signals]
        args: list[EncodableT] = [*self._args, new_epoch(), self.position]
        args += [orjson.dumps(signal) for signal in signals]
        return keys, args


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
