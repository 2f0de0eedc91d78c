"""The signal wire contract: what a message on the channel must look like.

A message is a JSON object. ``type`` and ``price`` are required; ``id``, ``symbol``,
``strategy``, ``ts`` and ``v`` form the full version the monitor publishes, and schema
version 2 adds ``timeframe``, ``params``, ``indicators`` and ``reason`` (all optional, so a
version 1 message is still valid). Any other field passes through to clients untouched, so
the relay forwards the parsed object, not a re-serialised model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    ValidationError,
)

from common.constants import SCHEMA_VERSION
from common.offsets import parse_position

SignalType = Literal["BUY", "SELL"]
# Strict: "60000" and true are not numbers; finite: NaN/Infinity never reach a client.
FiniteNumber = Annotated[float, Strict(), AllowInfNan(False)]


def _position(value: str) -> str:
    if parse_position(value) is None:
        raise ValueError("not a history position like 'k3x9q2ab:1700000000000-0'")
    return value


#: "<epoch>:<ms>-<seq>" (or a bare "<ms>-<seq>" from before epochs): common.offsets.
PositionText = Annotated[str, Strict(), AfterValidator(_position)]


#: Bar interval: a positive integer and one unit, the largest that divides the interval
#: exactly ("500ms", "1s", "1m", "4h", "1d", "1w"); "m" is minutes, there are no months.
TIMEFRAME_PATTERN = r"^[1-9][0-9]{0,8}(ms|s|m|h|d|w)$"
#: Bounds of the version 2 fields: a few named numbers and one short sentence.
MAX_NUMBERS = 16
MAX_NUMBER_NAME = 64
MAX_REASON = 200
#: Named finite numbers (a strategy's parameters, the indicator values behind a signal).
NamedNumbers = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=MAX_NUMBER_NAME)], FiniteNumber],
    Field(max_length=MAX_NUMBERS),
]


#: Deepest nesting of objects/arrays accepted in a message.
MAX_DEPTH = 32


class RejectReason(StrEnum):
    """Why a message was not relayed; the values are metric label values."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    INVALID = "invalid"


class SignalRejected(ValueError):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class Signal(BaseModel):
    """Validation model. Unknown fields are allowed and kept by the caller."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: SignalType
    # Strict types: "60000" or true are not prices.
    price: Annotated[FiniteNumber, Field(ge=0)]
    id: str | None = Field(default=None, min_length=1, max_length=200)
    symbol: str | None = Field(default=None, min_length=1, max_length=64)
    strategy: str | None = Field(default=None, min_length=1, max_length=64)
    ts: FiniteNumber | None = None
    v: StrictInt | None = None
    offset: PositionText | None = None
    # Version 2. Typed, so a client can rely on them, and bounded, so they stay a few bytes.
    timeframe: Annotated[str, Strict(), Field(pattern=TIMEFRAME_PATTERN)] | None = Field(
        default=None, description="Bar interval, e.g. '1m', '500ms'."
    )
    params: NamedNumbers | None = Field(
        default=None, description="The strategy's parameters, e.g. {'fast': 5, 'slow': 20}."
    )
    indicators: NamedNumbers | None = Field(
        default=None, description="Indicator values on the bar that triggered the signal."
    )
    reason: Annotated[str, Strict(), Field(min_length=1, max_length=MAX_REASON)] | None = Field(
        default=None, description="Why, in one sentence: 'SMA 5 crossed above SMA 20 at 60,112.40'."
    )


def parse_signal(raw: bytes | str, max_bytes: int) -> dict[str, Any]:
    """Return the message as a dict if it honours the contract, else raise ``SignalRejected``."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise SignalRejected(RejectReason.TOO_LARGE, f"{len(data)} bytes > {max_bytes}")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SignalRejected(RejectReason.NOT_JSON, str(exc)) from None
    if not isinstance(obj, dict):
        raise SignalRejected(RejectReason.NOT_OBJECT, f"got {type(obj).__name__}")
    if _deeper_than(obj, MAX_DEPTH):
        # orjson parses ~1000 levels, but re-encoding for Socket.IO would hit RecursionError.
        raise SignalRejected(RejectReason.INVALID, f"nested deeper than {MAX_DEPTH} levels")
    try:
        Signal.model_validate(obj)
    except ValidationError as exc:
        raise SignalRejected(RejectReason.INVALID, _short_error(exc)) from None
    return obj


def _deeper_than(obj: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _short_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )


def make_signal(
    *,
    signal_id: str,
    signal_type: SignalType,
    price: float,
    symbol: str,
    strategy: str,
    ts: float | None = None,
    timeframe: str | None = None,
    params: Mapping[str, float] | None = None,
    indicators: Mapping[str, float] | None = None,
    reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the full form of a signal, as the monitor publishes it.

    The version 2 fields are left out when not given, rather than sent as null.
    """
    v2 = {"timeframe": timeframe, "params": params, "indicators": indicators, "reason": reason}
    return {
        "v": SCHEMA_VERSION,
        "id": signal_id,
        "type": signal_type,
        "symbol": symbol,
        "strategy": strategy,
        "price": price,
        "ts": time.time() if ts is None else ts,
        **{k: dict(v) if isinstance(v, Mapping) else v for k, v in v2.items() if v is not None},
        **extra,
    }


def signal_id(symbol: str, strategy: str, bar_ts: float) -> str:
    """Deterministic id, so a replayed or taken-over bar yields the same id."""
    return f"{symbol}:{strategy}:{int(bar_ts * 1000)}"
