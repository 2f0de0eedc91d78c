"""History positions: the resume token clients see, parsed and formatted in one place.

A position is ``"<epoch>:<ms>-<seq>"``: the id of a history-stream entry (``ms-seq``)
prefixed by the epoch of the history it belongs to (docs/delivery.md). The epoch changes
when Redis loses the history, so a token from before the loss can never pass for one
after it. Bare ``"<ms>-<seq>"`` tokens come from before epochs existed: they still parse
(``epoch`` None) and are replayed from, but a resume with one cannot be proven complete.

Parsing never raises: anything that is not exactly this shape, in ASCII, with each
number within Redis's 64-bit range, is ``None``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

Offset = tuple[int, int]

#: Redis stream ids are two unsigned 64-bit integers.
MAX_ID_PART = 2**64 - 1
EPOCH_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
EPOCH_LENGTH = 8
# [0-9], never \d or str.isdigit(): both accept digits of other scripts (isdigit() even
# superscripts, which int() then refuses: issue 12, 2b).
_EPOCH = f"[0-9a-z]{{{EPOCH_LENGTH}}}"
_ID = "([0-9]{1,20})-([0-9]{1,20})"
#: The whole token; also the Signal schema's ``offset`` pattern.
POSITION_PATTERN = f"^(?:({_EPOCH}):)?{_ID}$"
_POSITION = re.compile(POSITION_PATTERN, re.ASCII)
MAX_POSITION_LENGTH = EPOCH_LENGTH + 1 + 20 + 1 + 20
ZERO: Offset = (0, 0)


@dataclass(frozen=True)
class Position:
    """Where a client (or this gateway) is: an entry id, in a history epoch if known."""

    epoch: str | None
    offset: Offset

    def __str__(self) -> str:
        return format_position(self.epoch, self.offset)


def parse_position(value: object) -> Position | None:
    """``"E:ms-seq"`` or legacy ``"ms-seq"`` as a Position; None for anything else."""
    if not isinstance(value, str) or len(value) > MAX_POSITION_LENGTH:
        return None
    # fullmatch: "$" alone would also accept a trailing newline.
    match = _POSITION.fullmatch(value)
    if match is None:
        return None
    epoch, ms, seq = match.groups()
    offset = int(ms), int(seq)
    if max(offset) > MAX_ID_PART:
        return None
    return Position(epoch, offset)


def parse_offset(value: object) -> Offset | None:
    """A bare stream id (``"ms-seq"``, as Redis returns it); None if it is not one."""
    position = parse_position(value)
    return position.offset if position is not None and position.epoch is None else None


def format_offset(offset: Offset) -> str:
    return f"{offset[0]}-{offset[1]}"


def format_position(epoch: str | None, offset: Offset) -> str:
    bare = format_offset(offset)
    return bare if epoch is None else f"{epoch}:{bare}"


def is_epoch(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(_EPOCH, value, re.ASCII) is not None


def new_epoch() -> str:
    """A fresh epoch token. Made here, not in Lua: Lua in Redis has no good randomness."""
    return "".join(secrets.choice(EPOCH_ALPHABET) for _ in range(EPOCH_LENGTH))
