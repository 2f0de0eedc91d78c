"""Typed objects the stream yields: a Signal, or a Recovery notice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_KNOWN = ("type", "price", "id", "symbol", "strategy", "ts", "v", "offset")


@dataclass(frozen=True)
class Signal:
    """One trading signal. Fields the client does not know are kept in ``extra``."""

    type: str
    price: float
    id: str | None = None
    symbol: str | None = None
    strategy: str | None = None
    ts: float | None = None
    v: int | None = None
    offset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object) -> Signal:
        """Build from a payload; ValueError if it lacks a usable ``type`` or ``price``."""
        if not isinstance(data, dict):
            raise ValueError(f"signal is not an object: {type(data).__name__}")
        kind, price = data.get("type"), data.get("price")
        if not isinstance(kind, str) or isinstance(price, bool):
            raise ValueError("signal needs a string 'type' and a numeric 'price'")
        if not isinstance(price, int | float):
            raise ValueError("signal needs a numeric 'price'")
        return cls(
            type=kind,
            price=float(price),
            id=_opt(data, "id", str),
            symbol=_opt(data, "symbol", str),
            strategy=_opt(data, "strategy", str),
            ts=_opt_number(data, "ts"),
            v=data["v"] if isinstance(data.get("v"), int) else None,
            offset=_opt(data, "offset", str),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )

    def to_dict(self) -> dict[str, Any]:
        """The payload again: known fields that are set, then the extra ones."""
        known = {k: getattr(self, k) for k in _KNOWN if getattr(self, k) is not None}
        return {**known, **self.extra}


@dataclass(frozen=True)
class Recovery:
    """How a resume went (the gateway's ``recovery`` event), or an epoch change seen live.

    ``complete`` False means signals between ``since`` and now may be missing: reload the
    history (``reason``: trimmed, epoch_changed, epoch_unknown, unavailable).
    """

    complete: bool
    recovered: int
    reason: str | None
    epoch: str | None
    since: str | None = None

    @classmethod
    def from_dict(cls, data: object) -> Recovery:
        if not isinstance(data, dict):
            raise ValueError("recovery is not an object")
        recovered = data.get("recovered")
        return cls(
            complete=data.get("complete") is True,
            recovered=recovered if isinstance(recovered, int) else 0,
            reason=_opt(data, "reason", str),
            epoch=_opt(data, "epoch", str),
            since=_opt(data, "since", str),
        )


def _opt(data: dict[str, Any], key: str, kind: type[str]) -> str | None:
    value = data.get(key)
    return value if isinstance(value, kind) else None


def _opt_number(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
