"""What every destination is: its configuration's common part, and the one call it answers.

One file per destination beside this one (webhook, slack, discord, telegram, email), like
the monitor's ``sources/``. The delivery loop (``notifier.delivery``) owns ordering,
retries, backoff, rate limits, the circuit breaker and dead letters; a destination only
formats one signal and hands it over, saying through ``DeliveryError`` whether a retry
can help.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.filters import SIDES, signal_matches


class DeliveryError(Exception):
    """The destination did not accept the message.

    ``permanent``: retrying the same message cannot succeed (HTTP 4xx other than 408/429,
    a refused recipient): it goes to the dead letters at once. ``retry_after_s``: the
    receiver said when to try again (HTTP ``Retry-After``, Telegram's ``retry_after``).
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Delivery:
    """One signal on its way to one destination."""

    signal: Mapping[str, Any]
    #: Stays the same on every attempt and every replica (the signal id, else the stream
    #: entry id): receivers drop repeats by it.
    idempotency_key: str
    #: The history-stream entry id ("<ms>-<seq>").
    entry_id: str
    #: 1 on the first try.
    attempt: int = 1


class Destination(Protocol):
    config: DestinationConfig

    async def send(self, delivery: Delivery) -> None:
        """Hand the message over; return only once the receiver accepted it."""

    async def aclose(self) -> None: ...


#: A token, password or hook URL is well under this.
MAX_SECRET_BYTES = 64 * 1024


class SecretRef(BaseModel):
    """A secret named, never written, in the destinations file: an environment variable
    (a Kubernetes Secret through ``envFrom``/``secretKeyRef``) or a file (a mounted Secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def reveal(self) -> str:
        """The secret's value; raises ValueError naming what is missing (start-up fails)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ValueError(f"environment variable {self.env} is not set or empty")
            return value
        assert self.file is not None
        try:
            with self.file.open("rb") as secret:
                raw = secret.read(MAX_SECRET_BYTES + 1)  # bounded: not /dev/zero's whole
        except OSError as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc.strerror}") from exc
        if len(raw) > MAX_SECRET_BYTES:
            raise ValueError(f"secret file {self.file} is larger than {MAX_SECRET_BYTES} bytes")
        try:
            value = raw.decode().strip()
        except UnicodeDecodeError:
            raise ValueError(f"secret file {self.file} is not UTF-8 text") from None
        if not value:
            raise ValueError(f"secret file {self.file} is empty")
        return value


class Filters(BaseModel):
    """Which signals a destination takes; an empty list means any value (common.filters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()
    sides: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _known_sides(self) -> Filters:
        unknown = self.sides - SIDES
        if unknown:
            raise ValueError(f"sides may be {sorted(SIDES)}, not {sorted(unknown)}")
        return self

    def matches(self, signal: Mapping[str, Any]) -> bool:
        return signal_matches(signal, self.symbols, self.strategies, self.sides)


class DestinationConfig(BaseModel):
    """The part every destination's configuration has. Each destination module subclasses
    it with ``type: Literal["<kind>"]`` and its own fields, and ``build()`` makes the
    destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Unique; in metrics.")
    filters: Filters = Filters()
    #: A ``string.Template`` over the signal's fields ($symbol, $type, $price, ...); each
    #: destination has a readable default.
    template: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)
    #: Attempts before a message goes to the dead letters.
    max_attempts: int = Field(default=8, ge=1, le=1000)
    # Bounded and finite: ".inf" is valid YAML, and a pause of 1e300 s is a stopped
    # destination, not a schedule (an hour is already longer than any receiver's outage
    # worth waiting out between two attempts).
    backoff_initial_s: float = Field(default=0.5, gt=0, le=3600, allow_inf_nan=False)
    backoff_max_s: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)
    #: Messages per second at most (Telegram allows about 30 per bot); None: no limit.
    rate_per_s: float | None = Field(default=None, ge=0.001, le=100_000, allow_inf_nan=False)
    #: Consecutive failures that open the circuit, and how long it stays open.
    circuit_failures: int = Field(default=5, ge=1, le=1_000_000)
    circuit_open_s: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)

    def build(self) -> Destination:
        raise NotImplementedError
