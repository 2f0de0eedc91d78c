"""The Protocol every strategy implements: a pure function of a window of closes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from common.schema import SignalType


class Strategy(Protocol):
    name: str

    @property
    def warmup_bars(self) -> int:
        """Bars needed before ``evaluate`` can say anything."""
        ...

    def evaluate(self, closes: Sequence[float]) -> SignalType | None:
        """The signal that the *last* bar of ``closes`` triggers, if any.

        Only the bar where the state changes signals, so a held condition never repeats.
        """
        ...
