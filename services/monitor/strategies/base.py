"""The Protocol every strategy implements: a pure function of a window of closes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from common.schema import SignalType


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def warmup_bars(self) -> int:
        """Bars ``evaluate`` looks at; fewer means it says nothing yet."""
        ...

    def evaluate(self, closes: Sequence[float]) -> SignalType | None:
        """The signal that the *last* bar of ``closes`` triggers, if any.

        Only the bar where the state changes signals, so a held condition never repeats.
        Implementations look at the last ``warmup_bars`` closes only, so the answer does
        not depend on how much older history the caller happens to hold.
        """
        ...
