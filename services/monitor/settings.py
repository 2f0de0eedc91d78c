"""Monitor settings (environment variables; ``python -m monitor --help`` lists them)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from common.settings import ServiceSettings

DEFAULT_SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD"]


class MonitorSettings(ServiceSettings):
    port: int = Field(default=8001, ge=1, le=65535, description="HTTP port for probes and metrics.")
    source: Literal["sim"] = Field(default="sim", description="Market-data source.")
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SYMBOLS), description="Comma-separated symbols."
    )
    strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sma_cross"], description="Comma-separated strategy names."
    )
    tick_interval_s: float = Field(default=0.5, gt=0, description="Simulated bar interval, s.")
    sim_seed: int = Field(default=42, description="Seed of the simulated market.")
    sma_fast: int = Field(default=5, ge=1, description="sma_cross fast period, bars.")
    sma_slow: int = Field(default=20, ge=2, description="sma_cross slow period, bars.")
    publish_buffer_max: int = Field(
        default=10_000, ge=1, description="Signals held while Redis is unreachable."
    )
    dedupe_ttl_s: int = Field(
        default=86_400, ge=1, description="How long a published signal id is remembered."
    )
    history_maxlen: int = Field(
        default=10_000, ge=1, description="Signals kept in the history stream."
    )

    @field_validator("symbols", "strategies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("symbols", "strategies")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one")
        return value

    @model_validator(mode="after")
    def _periods(self) -> Self:
        if self.sma_fast >= self.sma_slow:
            raise ValueError("SMA_FAST must be smaller than SMA_SLOW")
        return self
