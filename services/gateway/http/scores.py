"""GET /api/scores: how good each strategy's signals have been, per symbol (monitor.scoring).

The monitor keeps one hash per (strategy, symbol) and a set listing them; this reads the
summaries, never the windows. Authorization is the history API's: with AUTH_REQUIRED a
client JWT is required, and a token's symbols claim limits the rows to those symbols.
"""

# No `from __future__ import annotations`: FastAPI must see the Query() in the signature.
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from common.constants import DEFAULT_SCORE_WINDOW, scores_index_key, scores_key
from common.redis import REDIS_ERRORS
from gateway.clients.auth import TokenVerifier
from gateway.http.errors import Refused, error_responses
from gateway.http.history import Creds, claims_reader
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

RATES = ("hit_rate_1", "hit_rate_5", "hit_rate_20", "avg_move_5")
FIELDS = ("signals", "window_signals", *RATES)
Values = Annotated[list[str], Query()]


class Score(BaseModel):
    symbol: str
    strategy: str
    signals: int = Field(description="Sample size: signals in the window, scored or pending.")
    hit_rate_1: float | None = Field(
        description="Share of signals right after 1 bar (0..1); null until one is scored."
    )
    hit_rate_5: float | None = Field(description="The same after 5 bars.")
    hit_rate_20: float | None = Field(description="The same after 20 bars.")
    avg_move_5: float | None = Field(
        description="Mean relative move after 5 bars in the signal's direction (0.01 = 1 %)."
    )


class Scores(BaseModel):
    window_signals: int = Field(description="Signals per strategy and symbol a window covers.")
    scores: list[Score] = Field(description="By symbol, then strategy.")


def _wanted(raw: list[str]) -> frozenset[str] | None:
    """Repeated parameters and comma lists, both; None: no filter."""
    found = frozenset(v.strip() for item in raw for v in item.split(",") if v.strip())
    return found or None


def _number(raw: bytes | None) -> float | None:
    return float(raw) if raw else None


def score_row(strategy: str, symbol: str, raw: list[bytes | None]) -> dict[str, Any]:
    values = dict(zip(FIELDS, raw, strict=True))
    row: dict[str, Any] = {"symbol": symbol, "strategy": strategy}
    row["signals"] = int(values["signals"] or 0)
    row.update({name: _number(values[name]) for name in RATES})
    return row


def scores_router(
    settings: GatewaySettings,
    redis: aioredis.Redis,
    verifier: TokenVerifier | None,
    metrics: GatewayMetrics,
) -> APIRouter:
    router = APIRouter(prefix="/api")
    channel = settings.signal_channel
    claims_of = claims_reader(settings, verifier, metrics)

    async def read(
        symbols: frozenset[str] | None, strategies: frozenset[str] | None
    ) -> dict[str, Any]:
        members = await redis.smembers(scores_index_key(channel))
        pairs = sorted((str(sy), str(st)) for st, sy in map(orjson.loads, members))
        pairs = [
            (sy, st)
            for sy, st in pairs
            if (symbols is None or sy in symbols) and (strategies is None or st in strategies)
        ]
        pipe = redis.pipeline(transaction=False)
        for symbol, strategy in pairs:
            pipe.hmget(scores_key(channel, strategy, symbol), FIELDS)
        raws = await pipe.execute() if pairs else []
        rows = [score_row(st, sy, raw) for (sy, st), raw in zip(pairs, raws, strict=True)]
        windows = [int(raw[1]) for raw in raws if raw[1]]
        return {"window_signals": max(windows, default=DEFAULT_SCORE_WINDOW), "scores": rows}

    @router.get("/scores", response_model=Scores, responses=error_responses(401, 503))
    async def scores(
        creds: Creds,
        symbol: Values = [],  # noqa: B006 (FastAPI copies defaults)
        strategy: Values = [],  # noqa: B006
    ) -> Response:
        """Hit rates and average move per strategy and symbol (docs/api.md)."""
        try:
            claims = claims_of(creds)
            symbols = _wanted(symbol)
            if claims is not None and claims.symbols is not None:
                symbols = claims.symbols if symbols is None else symbols & claims.symbols
            try:
                body = await read(symbols, _wanted(strategy))
            except REDIS_ERRORS as exc:
                raise Refused(503, "redis_unavailable", "redis unavailable") from exc
        except Refused as exc:
            return exc.response()
        return Response(orjson.dumps(body), media_type="application/json")

    return router
