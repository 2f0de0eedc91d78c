"""Comparing history positions: ``"<epoch>:<ms>-<seq>"`` or a bare ``"<ms>-<seq>"``.

A deliberate copy of the tiny rule in the gateway's ``common/offsets.py`` (this package is
installed without the services). The specification is docs/delivery.md: treat the token as
opaque, but to compare two, a different epoch is the newer one, else compare ``ms`` then
``seq`` as (big) integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# [0-9], never \d: \d accepts digits of other scripts.
_POSITION = re.compile(r"(?:([0-9a-z]{8}):)?([0-9]{1,20})-([0-9]{1,20})", re.ASCII)
_MAX_PART = 2**64 - 1


@dataclass(frozen=True, order=False)
class Position:
    epoch: str | None
    ms: int
    seq: int

    def __str__(self) -> str:
        bare = f"{self.ms}-{self.seq}"
        return bare if self.epoch is None else f"{self.epoch}:{bare}"


def parse_position(value: object) -> Position | None:
    """The position in ``value``, or None when it is not exactly one of the two forms."""
    if not isinstance(value, str):
        return None
    match = _POSITION.fullmatch(value)
    if match is None:
        return None
    epoch, ms, seq = match.group(1), int(match.group(2)), int(match.group(3))
    if max(ms, seq) > _MAX_PART:
        return None
    return Position(epoch, ms, seq)


def is_newer(candidate: Position, last: Position | None) -> bool:
    """Whether ``candidate`` comes after ``last``: another epoch always does."""
    if last is None or candidate.epoch != last.epoch:
        return True
    return (candidate.ms, candidate.seq) > (last.ms, last.seq)
