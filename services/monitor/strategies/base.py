"""The Protocol every strategy implements, and what it answers: a pure function of a window."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from common.schema import SignalType

#: Decimals shown for prices of 1 and more; smaller prices keep four significant digits.
PRICE_DECIMALS = 2
MAX_PRICE_DECIMALS = 12


@dataclass(frozen=True, slots=True)
class Trigger:
    """A strategy's signal on the last bar: the side, the values behind it and why.

    ``reason`` is one sentence for people ("SMA 5 crossed above SMA 20 at 60,112.40");
    ``indicators`` holds the numbers it quotes, for programs.
    """

    type: SignalType
    indicators: Mapping[str, float]
    reason: str


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def params(self) -> Mapping[str, float]:
        """The parameters it runs with, under the names ``STRATEGY_PARAMS`` uses."""
        ...

    @property
    def warmup_bars(self) -> int:
        """Bars ``evaluate`` looks at; fewer means it says nothing yet."""
        ...

    def evaluate(self, closes: Sequence[float]) -> Trigger | None:
        """The signal that the *last* bar of ``closes`` triggers, if any.

        Only the bar where the state changes signals, so a held condition never repeats.
        Implementations look at the last ``warmup_bars`` closes only, so the answer does
        not depend on how much older history the caller happens to hold.
        """
        ...


def format_price(price: float) -> str:
    """A price for a sentence: thousands separators, cents, and no 0.00 for small coins.

    60112.4 -> "60,112.40"; 0.4567 -> "0.4567"; 0.00001234 -> "0.00001234".
    """
    decimals = PRICE_DECIMALS
    if 0.0 < abs(price) < 1.0:
        # Four significant digits: a sub-cent coin must not read as 0.00.
        decimals = min(MAX_PRICE_DECIMALS, 3 - math.floor(math.log10(abs(price))))
    return f"{price:,.{decimals}f}"


def format_number(value: float) -> str:
    """A parameter in a sentence: 20 not 20.0, 2.5 as 2.5."""
    return f"{value:g}"
