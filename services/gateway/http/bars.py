"""GET /api/bars: a symbol's recent closed bars, as the monitor keeps them in Redis.

The list (``bars_key``) holds ``[close_ts, o, h, l, c, v]`` per bar, oldest first; the
answer gives each bar's open time ``t``, as the live ``new_bar`` event does, from the
timeframe the monitor states in its info hash. Authorization is the history API's: with
AUTH_REQUIRED a client JWT is required, and a token's symbols claim limits the symbols.
There is no replay of missed ``new_bar`` events: a chart reloads this after a reconnect.
"""

# No `from __future__ import annotations`: FastAPI must see the Query() in the signature.
import re
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from common.constants import bars_key, monitor_info_key
from common.redis import REDIS_ERRORS
from gateway.clients.auth import TokenVerifier
from gateway.http.errors import Refused, error_responses
from gateway.http.history import Creds, claims_reader
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

BARS_LIMIT_MAX = 500
BARS_LIMIT_DEFAULT = 200
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_TIMEFRAME = re.compile(r"^([1-9][0-9]{0,8})(ms|s|m|h|d|w)$")


class Bar(BaseModel):
    """One closed OHLCV bar: GET /api/bars items and the `new_bar` event."""

    symbol: str
    t: float = Field(description="Open time, Unix seconds.")
    o: float
    h: float
    l: float  # noqa: E741 (the wire name)
    c: float
    v: float
    timeframe: str | None = Field(description="Bar length, signal schema v2's form: '2s', '1m'.")


class Bars(BaseModel):
    symbol: str
    timeframe: str | None = Field(description="Bar length; null if the monitor did not say.")
    bars: list[Bar] = Field(description="Oldest first.")


def timeframe_seconds(timeframe: str | None) -> float | None:
    """Seconds of a wire timeframe ("500ms", "2s", "1m"); None if absent or malformed."""
    found = _TIMEFRAME.match(timeframe or "")
    return int(found[1]) * _UNIT_S[found[2]] if found else None


def bar_item(symbol: str, raw: bytes, timeframe: str | None) -> dict[str, Any]:
    ts, o, h, low, c, v = orjson.loads(raw)
    length = timeframe_seconds(timeframe)
    t = ts - length if length else ts
    return {
        "symbol": symbol,
        "t": t,
        "o": o,
        "h": h,
        "l": low,
        "c": c,
        "v": v,
        "timeframe": timeframe,
    }


def bars_router(
    settings: GatewaySettings,
    redis: aioredis.Redis,
    verifier: TokenVerifier | None,
    metrics: GatewayMetrics,
) -> APIRouter:
    router = APIRouter(prefix="/api")
    channel = settings.signal_channel
    claims_of = claims_reader(settings, verifier, metrics)

    async def read(symbol: str, limit: int) -> dict[str, Any]:
        pipe = redis.pipeline(transaction=False)
        pipe.lrange(bars_key(channel, symbol), -limit, -1)
        pipe.hget(monitor_info_key(channel), "timeframe")
        raw, timeframe = await pipe.execute()
        timeframe = timeframe.decode() if timeframe else None
        items = [bar_item(symbol, item, timeframe) for item in raw]
        return {"symbol": symbol, "timeframe": timeframe, "bars": items}

    @router.get("/bars", response_model=Bars, responses=error_responses(401, 403, 503))
    async def bars(
        creds: Creds,
        symbol: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=BARS_LIMIT_MAX)] = BARS_LIMIT_DEFAULT,
    ) -> Response:
        """A symbol's recent closed bars, oldest first (docs/api.md)."""
        try:
            claims = claims_of(creds)
            if claims is not None and claims.symbols is not None and symbol not in claims.symbols:
                raise Refused(403, "forbidden", f"not allowed: {symbol}")
            try:
                body = await read(symbol, limit)
            except REDIS_ERRORS as exc:
                raise Refused(503, "redis_unavailable", "redis unavailable") from exc
        except Refused as exc:
            return exc.response()
        return Response(orjson.dumps(body), media_type="application/json")

    return router
