"""Monitor settings (environment variables; ``python -m monitor --help`` lists them).

Every setting is documented in docs/monitor.md with example configurations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from common.constants import DEFAULT_SCORE_WINDOW
from common.settings import HistorySettings, ServiceSettings, SettingsError

DEFAULT_SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD"]
SAMPLE_REPLAY_FILE = Path(__file__).resolve().parent / "sources" / "sample_ohlcv.csv"

SourceName = Literal["sim", "replay", "exchange"]
#: {"strategy": {"param": value}}
StrategyParams = dict[str, dict[str, float]]


class MonitorSettings(ServiceSettings, HistorySettings):
    cli_commands: ClassVar[str] = (
        "\nAlso: python -m monitor backtest --help (the strategies over a file, with a report)."
    )
    port: int = Field(default=8001, ge=1, le=65535, description="HTTP port for probes and metrics.")
    source: SourceName = Field(default="sim", description="Market data: sim, replay, exchange.")
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SYMBOLS), description="Comma-separated symbols."
    )
    strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sma_cross"],
        description="Comma-separated strategies: sma_cross, rsi, macd_cross, bollinger.",
    )
    strategy_params: StrategyParams = Field(
        default_factory=dict,
        description='JSON, per strategy: {"sma_cross": {"fast": 5, "slow": 20}}.',
    )
    symbol_params: dict[str, StrategyParams] = Field(
        default_factory=dict,
        description='JSON, per symbol then strategy: {"BTC-USD": {"rsi": {"period": 10}}}.',
    )
    # --- sim ---
    # 2 s bars: with the default sma_cross 5/20, a signal per symbol every ~30 s (docs/monitor.md).
    tick_interval_s: float = Field(default=2.0, gt=0, description="sim: bar interval, s.")
    sim_seed: int = Field(default=42, description="sim: seed of the simulated market.")
    sim_volatility: float = Field(default=0.004, gt=0, lt=1, description="sim: per-bar sigma.")
    # --- replay ---
    replay_file: Path = Field(
        default=SAMPLE_REPLAY_FILE, description="replay: CSV of OHLCV bars (docs/monitor.md)."
    )
    replay_speed: float = Field(
        default=1.0, ge=0, description="replay: pace multiplier; 0 = as fast as possible."
    )
    # --- exchange ---
    exchange_id: str = Field(default="binance", description="exchange: ccxt exchange id.")
    exchange_timeframe: str = Field(default="1m", description="exchange: OHLCV bar timeframe.")
    exchange_poll_interval_s: float = Field(
        default=10.0, gt=0, description="exchange: seconds between OHLCV polls per symbol."
    )
    exchange_url: str | None = Field(
        default=None, description="exchange: base URL replacing the exchange's API host."
    )
    exchange_timeout_s: float = Field(default=10.0, gt=0, description="exchange: request timeout.")
    exchange_options: dict[str, Any] = Field(
        default_factory=dict,
        description='exchange: JSON ccxt options, e.g. {"fetchMarkets": {"types": ["spot"]}}.',
    )
    exchange_stream: bool = Field(
        default=False,
        description="exchange: follow the WebSocket kline stream (binance), REST polling as "
        "the fallback.",
    )
    exchange_stream_url: str | None = Field(
        default=None,
        description="exchange: ws:// or wss:// base URL replacing the stream's host (tests).",
    )
    exchange_stream_stale_s: float | None = Field(
        default=None,
        gt=0,
        description="exchange: seconds without a stream message before polling takes over "
        "(default: two bars of EXCHANGE_TIMEFRAME).",
    )
    source_backoff_max_s: float = Field(
        default=30.0, gt=0, description="Cap of the per-symbol backoff after a source error, s."
    )
    # --- leases and publishing ---
    lease_ttl_s: float = Field(
        default=10.0,
        ge=0.3,
        le=300,
        description="A dead replica's symbols are taken over within this, s.",
    )
    replica_id: str | None = Field(
        default=None, description="Name of this replica in leases (default: host:pid:random)."
    )
    publish_buffer_max: int = Field(
        default=10_000, ge=1, description="Signals held while Redis is unreachable."
    )
    bars_ttl_s: int = Field(
        default=3_600, ge=1, description="How long recent bars stay in Redis for warm-ups."
    )
    bars_keep: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Recent bars kept per symbol in Redis (charts: GET /api/bars), at least "
        "what the strategies need to warm up.",
    )

    score_window: int = Field(
        default=DEFAULT_SCORE_WINDOW,
        ge=1,
        le=10_000,
        description="Signals per strategy and symbol the scorecard (GET /api/scores) covers.",
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
        if len(set(value)) != len(value):
            raise ValueError("names must be unique")
        return value

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, value: list[str]) -> list[str]:
        from monitor.strategies import AVAILABLE

        unknown = [name for name in value if name not in AVAILABLE]
        if unknown:
            raise ValueError(f"unknown strategy {unknown[0]!r}; available: {', '.join(AVAILABLE)}")
        return value

    @model_validator(mode="after")
    def _strategies_build(self) -> Self:
        # Building every (symbol, strategy) now turns a bad parameter into a start-up error.
        from monitor.strategies import build_strategy_book

        try:
            build_strategy_book(
                self.symbols, self.strategies, self.strategy_params, self.symbol_params
            )
        except ValueError as exc:
            # The error may come from any of these; name the ones this deployment sets.
            involved = ("strategies", "strategy_params", "symbol_params", "symbols")
            given = [name for name in involved if name in self.model_fields_set]
            raise SettingsError(str(exc), *(given or involved)) from None
        self._check_exchange_stream()
        if self.source == "replay" and not self.replay_file.is_file():
            raise SettingsError(
                f"REPLAY_FILE {self.replay_file} is not a readable file", "replay_file"
            )
        return self

    def _check_exchange_stream(self) -> None:
        from monitor.sources.kline_tap import STREAM_EXCHANGES

        if not self.exchange_stream:
            return
        if self.source != "exchange":
            raise SettingsError(
                f"EXCHANGE_STREAM needs SOURCE=exchange, got {self.source!r}",
                "exchange_stream",
                "source",
            )
        if self.exchange_id not in STREAM_EXCHANGES:
            raise SettingsError(
                f"EXCHANGE_STREAM supports {', '.join(STREAM_EXCHANGES)}, not {self.exchange_id!r}",
                "exchange_stream",
                "exchange_id",
            )
        url = self.exchange_stream_url
        if url is not None and not url.startswith(("ws://", "wss://")):
            raise SettingsError(
                f"EXCHANGE_STREAM_URL must start with ws:// or wss://, got {url!r}",
                "exchange_stream_url",
            )

    @property
    def lease_renew_s(self) -> float:
        from monitor.leases import RENEW_FRACTION

        return self.lease_ttl_s * RENEW_FRACTION
