"""GET /api/signals: bounds, filters and a bounded, cursor-paged scan of the history stream.

The scan reads the stream in pages and filters server-side, reading at most ``scan_max``
entries per request. A request that reaches that bound before ``limit`` matches answers
what it found with a cursor at the last entry *read* (not returned), so the next request
goes on from there: a page may hold fewer than ``limit`` signals (even none) and still have
a next page. The cursor is that entry's position; pages neither skip nor repeat an entry,
in either order. ``next_cursor`` is null once the range is exhausted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal, cast

import redis.asyncio as aioredis
from pydantic import ValidationError

from common.constants import history_key
from common.offsets import MAX_ID_PART, Offset, Position, format_offset, parse_position
from common.publish import Epoch, StreamEntries, entry_signal
from common.schema import PositionText, Signal
from gateway.delivery.filters import SignalFilter
from gateway.delivery.history import start_after

Order = Literal["asc", "desc"]
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
#: Entries read per Redis call while filtering (a page of a scan, not of the answer).
READ_MAX = 500


class HistorySignal(Signal):
    """A signal as the history returns it: with its position."""

    offset: PositionText  # required here, optional on input


class BadQuery(ValueError):
    """A parameter that cannot be read; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Bound:
    """One end of a stream range: an entry id, inclusive or not."""

    offset: Offset
    inclusive: bool

    def redis(self) -> str:
        return ("" if self.inclusive else "(") + format_offset(self.offset)


def _time_ms(value: str) -> Decimal | None:
    """A Unix time in seconds or an ISO 8601 time, in ms (exact); None if it is neither."""
    if _NUMBER.fullmatch(value):
        return Decimal(value) * 1000  # Decimal: a float turns 1700000000.123 s into ...122 ms
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # not the gateway's local zone: servers differ
    return Decimal((moment - _UNIX) // timedelta(microseconds=1)) / 1000


def _after(position: Position, epoch: Epoch) -> Offset:
    """Where entries not yet seen from ``position`` start (epochs as in a resume)."""
    return position.offset if position.epoch is None else start_after(position, epoch)


def since_bound(value: str, epoch: Epoch) -> Bound:
    """``since``: after a position (epoch-aware, like a resume), or from a time on."""
    position = parse_position(value)
    if position is not None:
        return Bound(_after(position, epoch), inclusive=False)
    ms = _time_ms(value)
    if ms is None or ms < 0:
        raise BadQuery("since", "an offset ('E:ms-seq' or 'ms-seq') or a time (ISO 8601, Unix s)")
    return Bound((math.ceil(ms), 0), inclusive=True)


def until_bound(value: str) -> Bound:
    """``until``: up to a position, or up to a time, both inclusive."""
    position = parse_position(value)
    if position is not None:
        return Bound(position.offset, inclusive=True)
    ms = _time_ms(value)
    if ms is None or ms < 0:
        raise BadQuery("until", "an offset ('E:ms-seq' or 'ms-seq') or a time (ISO 8601, Unix s)")
    return Bound((min(math.floor(ms), MAX_ID_PART), MAX_ID_PART), inclusive=True)


@dataclass(frozen=True)
class Filters:
    """Which signals a query wants (``symbols``) and may see (``allowed``, from its token).

    The rule is live delivery's (gateway/delivery/filters.py): the history answers what a
    client with the same filter and token would have been sent.
    """

    symbols: frozenset[str] | None = None
    allowed: frozenset[str] | None = None
    strategies: frozenset[str] | None = None
    types: frozenset[str] | None = None

    def matches(self, signal: dict[str, Any]) -> bool:
        return self._wanted.matches(signal) and self._may_see.matches(signal)

    @cached_property
    def _wanted(self) -> SignalFilter:
        none = frozenset[str]()
        return SignalFilter(self.symbols or none, self.strategies or none, self.types or none)

    @cached_property
    def _may_see(self) -> SignalFilter:
        return SignalFilter().within(self.allowed)


@dataclass(frozen=True)
class Page:
    signals: list[dict[str, Any]]
    next_cursor: str | None
    epoch: str
    scanned: int


@dataclass(frozen=True)
class HistoryQuery:
    filters: Filters
    limit: int
    order: Order
    since: Bound | None
    until: Bound | None


def with_cursor(query: HistoryQuery, cursor: str | None, epoch: Epoch) -> HistoryQuery:
    """``query`` narrowed past ``cursor`` (the last position an earlier page read)."""
    if cursor is None:
        return query
    position = parse_position(cursor)
    if position is None:
        raise BadQuery("cursor", "not a cursor from an earlier page")
    if query.order == "asc":
        after = Bound(_after(position, epoch), inclusive=False)
        since = after if query.since is None or after.offset >= query.since.offset else query.since
        return HistoryQuery(query.filters, query.limit, query.order, since, query.until)
    before = Bound(position.offset, inclusive=False)
    until = before if query.until is None or before.offset <= query.until.offset else query.until
    return HistoryQuery(query.filters, query.limit, query.order, query.since, until)


async def scan(
    client: aioredis.Redis, channel: str, query: HistoryQuery, *, epoch: Epoch, scan_max: int
) -> Page:
    """One page of ``query``, reading at most ``scan_max`` entries.

    ``epoch`` is read before the entries: if it changes in between, they carry the older
    token, and a resume from one is told "epoch changed" - cautious, never falsely complete.
    """
    key = history_key(channel)
    low = query.since.redis() if query.since else "-"
    high = query.until.redis() if query.until else "+"
    found: list[dict[str, Any]] = []
    scanned, last = 0, None
    while len(found) < query.limit and scanned < scan_max:
        count = min(READ_MAX, scan_max - scanned, max(query.limit - len(found), 100))
        entries = await _read(client, key, query.order, low=low, high=high, count=count)
        for entry_id, fields in entries:
            scanned += 1
            last = entry_id.decode()
            signal = entry_signal(epoch.epoch, entry_id, fields)
            if query.filters.matches(signal) and _valid(signal):
                found.append(signal)
                if len(found) == query.limit:
                    break
        if len(entries) < count and len(found) < query.limit:
            last = None  # the range is exhausted: no next page
            break
        if last is not None:
            low, high = (f"({last}", high) if query.order == "asc" else (low, f"({last}")
    cursor_out = None if last is None else f"{epoch.epoch}:{last}"
    return Page(found, cursor_out, epoch.epoch, scanned)


async def _read(
    client: aioredis.Redis, key: str, order: Order, *, low: str, high: str, count: int
) -> StreamEntries:
    if order == "asc":
        entries = await client.xrange(key, min=low, max=high, count=count)
    else:
        entries = await client.xrevrange(key, max=high, min=low, count=count)
    return cast(StreamEntries, entries)


def _valid(signal: dict[str, Any]) -> bool:
    """Only entries honouring the contract are answered (the response model promises it)."""
    try:
        HistorySignal.model_validate(signal)
    except ValidationError:
        return False
    return True
