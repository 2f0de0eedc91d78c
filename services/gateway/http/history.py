"""GET /api/signals (history query) and GET /api/signals/latest (its newest-first shortcut).

Authorization is live delivery's: with AUTH_REQUIRED a client JWT (``Authorization:
Bearer``) is required; a token sent anyway is verified; its symbols claim limits what is
answered, exactly as it limits the rooms a Socket.IO client may join.
"""

# No `from __future__ import annotations`: FastAPI must see the Query() built in a closure.
from collections.abc import Callable
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from common.publish import Epoch, ensure_epoch
from common.redis import REDIS_ERRORS
from gateway.clients.auth import AuthError, Claims, TokenVerifier
from gateway.http.errors import Refused, error_responses, unauthorized
from gateway.http.history_query import (
    BadQuery,
    Filters,
    HistoryQuery,
    HistorySignal,
    Order,
    Page,
    scan,
    since_bound,
    until_bound,
    with_cursor,
)
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

bearer = HTTPBearer(auto_error=False)
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
Values = Annotated[list[str], Query()]
#: Builds the query once the epoch and the token's symbols are known.
Build = Callable[[Epoch, frozenset[str] | None], HistoryQuery]


class HistoryPage(BaseModel):
    signals: list[HistorySignal] = Field(description="Matching signals, in the asked order.")
    next_cursor: str | None = Field(
        description="Pass as 'cursor' for the next page; null when there is no more."
    )
    epoch: str = Field(description="The history epoch the offsets belong to.")


class LatestSignals(BaseModel):
    signals: list[HistorySignal] = Field(description="Newest first.")


def _values(raw: list[str]) -> frozenset[str] | None:
    """Repeated parameters and comma lists, both: ``?symbol=A&symbol=B,C``; None: no filter."""
    found = frozenset(v.strip() for item in raw for v in item.split(",") if v.strip())
    return found or None


def _json(body: dict[str, Any]) -> Response:
    # The signals were checked against HistorySignal while scanning: no second validation.
    return Response(orjson.dumps(body), media_type="application/json")


def claims_reader(
    settings: GatewaySettings, verifier: TokenVerifier | None, metrics: GatewayMetrics
) -> Callable[[HTTPAuthorizationCredentials | None], Claims | None]:
    """The read API's authorization (signals, bars): a request's claims, or ``Refused``."""

    def claims_of(creds: HTTPAuthorizationCredentials | None) -> Claims | None:
        if creds is None or verifier is None:
            if settings.auth_required:
                metrics.auth_refused.labels("missing_token").inc()
                raise unauthorized("missing_token")
            return None
        try:
            return verifier.verify(creds.credentials)
        except AuthError as exc:
            metrics.auth_refused.labels(exc.reason.value).inc()
            raise unauthorized(exc.reason.value) from None

    return claims_of


def history_router(
    settings: GatewaySettings,
    redis: aioredis.Redis,
    verifier: TokenVerifier | None,
    metrics: GatewayMetrics,
) -> APIRouter:
    router = APIRouter(prefix="/api")
    channel = settings.signal_channel
    refusals = error_responses(400, 401, 503)
    claims_of = claims_reader(settings, verifier, metrics)

    async def run(creds: Creds, build: Build) -> Page:
        claims = claims_of(creds)
        allowed = None if claims is None else claims.symbols
        try:
            epoch = await ensure_epoch(redis, channel, None)
            query = build(epoch, allowed)
            page = await scan(
                redis, channel, query, epoch=epoch, scan_max=settings.history_scan_max
            )
        except BadQuery as exc:
            raise Refused(400, "invalid_query", f"{exc.param}: {exc}") from None
        except REDIS_ERRORS as exc:
            raise Refused(503, "redis_unavailable", "redis unavailable") from exc
        metrics.api_history_scanned.inc(page.scanned)
        return page

    @router.get("/signals", response_model=HistoryPage, responses=refusals)
    async def history(
        *,
        creds: Creds,
        symbol: Values = [],  # noqa: B006 (FastAPI copies defaults)
        strategy: Values = [],  # noqa: B006
        type: Values = [],  # noqa: B006 (the public name)
        since: str | None = None,
        until: str | None = None,
        limit: Annotated[int, Query(ge=1, le=settings.latest_limit_max)] = 50,
        order: Order = "asc",
        cursor: str | None = None,
    ) -> Response:
        """Query the history: filters, time or offset bounds, cursor pages (docs/api.md)."""

        def build(epoch: Epoch, allowed: frozenset[str] | None) -> HistoryQuery:
            types = _values(type)
            if types is not None and not types <= {"BUY", "SELL"}:
                raise BadQuery("type", "BUY or SELL")
            filters = Filters(_values(symbol), allowed, _values(strategy), types)
            query = HistoryQuery(
                filters,
                limit,
                order,
                since_bound(since, epoch) if since else None,
                until_bound(until) if until else None,
            )
            return with_cursor(query, cursor, epoch)

        try:
            page = await run(creds, build)
        except Refused as exc:
            return exc.response()
        body = {"signals": page.signals, "next_cursor": page.next_cursor, "epoch": page.epoch}
        return _json(body)

    @router.get("/signals/latest", response_model=LatestSignals, responses=refusals)
    async def latest(
        creds: Creds,
        limit: Annotated[int, Query(ge=1, le=settings.latest_limit_max)] = 50,
    ) -> Response:
        """Shortcut: the newest signals, newest first (GET /api/signals?order=desc&limit=N)."""

        def build(_epoch: Epoch, allowed: frozenset[str] | None) -> HistoryQuery:
            return HistoryQuery(Filters(allowed=allowed), limit, "desc", None, None)

        try:
            page = await run(creds, build)
        except Refused as exc:
            return exc.response()
        return _json({"signals": page.signals})

    return router
