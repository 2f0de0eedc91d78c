"""GET /api/signals/stream: live signals as Server-Sent Events, resumable (docs/api.md).

Each signal is ``id: <offset>\\nevent: signal\\ndata: <json>\\n\\n``; an idle stream gets a
``: ping`` comment every ``SSE_HEARTBEAT_S``. A client that sends ``Last-Event-ID`` (as an
EventSource does after a reconnect) or ``?offset=`` first gets its gap from the history,
through the same catch-up as a Socket.IO resume (gateway/delivery/recovery.py), then a
``recovery`` event. The stream ends when the client leaves (at once: a task waits for the
disconnect), when it falls behind (gateway/delivery/sse.py), or when its token expires.

Tokens: ``Authorization: Bearer`` or ``?token=``, because a browser's EventSource cannot
set headers. A token in the URL can end up in proxy and access logs and browser history:
give such clients short-lived tokens (the stream ends at ``exp``; the client reconnects
with a fresh one and resumes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Receive, Scope, Send

from common.offsets import Position, parse_position
from gateway.clients.auth import AuthError, Claims, TokenVerifier
from gateway.clients.requests import SymbolRequestError, parse_symbols
from gateway.delivery.recovery import CatchUp, Resume
from gateway.delivery.sse import PING, SseClient, SseHub, SseSink, StreamFilter, WithStreams
from gateway.edge.guard import FULL_BODY, RETRY_AFTER_S
from gateway.http.errors import Refused, error_responses, unauthorized
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

SIGNAL_TYPES = frozenset({"BUY", "SELL"})
#: How long a dropped client's pending write may take before the stream gives up on it.
DROP_GRACE_S = 2.0
#: Queued events written in one send (fewer, larger writes for a busy stream).
BATCH_MAX = 64
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
    "Connection": "keep-alive",
}
bearer = HTTPBearer(auto_error=False)


def _values(raw: list[str]) -> list[str]:
    """Repeated parameters and comma lists, both: ``?symbol=A&symbol=B,C``."""
    return [v.strip() for item in raw for v in item.split(",") if v.strip()]


def _filter(symbols: list[str], strategies: list[str], types: list[str]) -> StreamFilter:
    try:
        wanted = parse_symbols(_values(symbols))
        by_strategy = parse_symbols(_values(strategies))
    except SymbolRequestError as exc:
        raise Refused(400, "invalid_query", str(exc)) from None
    sides = {t.upper() for t in _values(types)}
    if not sides <= SIGNAL_TYPES:
        raise Refused(400, "invalid_query", "type must be BUY or SELL")
    return StreamFilter(frozenset(wanted), frozenset(by_strategy), frozenset(sides))


def _since(last_event_id: str | None, offset: str | None) -> Position | None:
    # The header wins: an EventSource keeps its first URL (and its ?offset=) on reconnects.
    raw = last_event_id or offset
    if not raw:
        return None
    position = parse_position(raw)
    if position is None:
        raise Refused(
            400,
            "invalid_query",
            "Last-Event-ID / offset must be a history position like 'k3x9q2ab:1700000000000-0'",
        )
    return position


class EventStream(Response):
    """The streaming response: writer, disconnect watch, catch-up and expiry, one task each."""

    media_type = "text/event-stream"

    def __init__(
        self, hub: SseHub, client: SseClient, heartbeat_s: float, expires_in_s: float | None
    ) -> None:
        super().__init__(headers=HEADERS, media_type=self.media_type)
        # A stream has no length: uvicorn then sends it chunked.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.hub = hub
        self.client = client
        self.heartbeat_s = heartbeat_s
        self.expires_in_s = expires_in_s
        self.catch_up: tuple[CatchUp, Position] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await self._run(receive, send)
        finally:
            self.hub.close(self.client)

    async def _run(self, receive: Receive, send: Send) -> None:
        writer = asyncio.create_task(self._write(send))
        watchers = [
            asyncio.create_task(_disconnected(receive)),
            asyncio.create_task(self.client.ended.wait()),
        ]
        if self.expires_in_s is not None:
            watchers.append(asyncio.create_task(asyncio.sleep(max(0.0, self.expires_in_s))))
        if self.catch_up is not None:
            catch_up, since = self.catch_up
            sink = SseSink(self.hub, self.client)
            watchers.append(asyncio.create_task(_forever(catch_up.run(Resume("sse", since), sink))))
        try:
            done, _ = await asyncio.wait([writer, *watchers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [writer, *watchers]:
                task.cancel()
            await asyncio.gather(writer, *watchers, return_exceptions=True)
        if watchers[0] not in done:  # the client is still there: end the response cleanly
            await self._finish(send)

    async def _write(self, send: Send) -> None:
        queue = self.client.queue
        while True:
            try:
                async with asyncio.timeout(self.heartbeat_s):
                    frames = [await queue.get()]
            except TimeoutError:
                frames = [PING]
            while len(frames) < BATCH_MAX and not queue.empty():
                frames.append(queue.get_nowait())
            await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})

    async def _finish(self, send: Send) -> None:
        """End the response; a client that reads nothing at all is left to uvicorn to close."""
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(DROP_GRACE_S):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _forever(work: Awaitable[None]) -> None:
    """Run ``work`` and then wait: a finished catch-up must not end the stream."""
    await work
    await asyncio.Event().wait()


def stream_router(
    settings: GatewaySettings,
    hub: SseHub,
    catch_up: CatchUp,
    connections: WithStreams,
    metrics: GatewayMetrics,
) -> APIRouter:
    router = APIRouter(prefix="/api")
    verifier = TokenVerifier(settings) if settings.auth_enabled else None

    def authorize(header: HTTPAuthorizationCredentials | None, query: str | None) -> Claims | None:
        token = header.credentials if header else query
        if token is None or verifier is None:
            if settings.auth_required:
                metrics.auth_refused.labels("missing_token").inc()
                raise unauthorized("missing_token")
            return None
        try:
            return verifier.verify(token)
        except AuthError as exc:
            metrics.auth_refused.labels(exc.reason.value).inc()
            raise unauthorized(exc.reason.value) from None

    def has_room() -> bool:
        limit = settings.max_connections
        return connections.held() < limit or connections.open() < limit

    @router.get(
        "/signals/stream",
        response_class=EventStream,
        # EventStream's constructor takes no status_code, so FastAPI cannot read a default
        # from it to build the OpenAPI document (/openapi.json answered 500 without this).
        status_code=200,
        responses={
            200: {"content": {"text/event-stream": {}}},
            **error_responses(400, 401, 403, 503, by_ref=True),
        },
        summary="Live signals as Server-Sent Events (resumable with Last-Event-ID)",
    )
    async def stream(
        *,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        symbol: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
        strategy: Annotated[list[str], Query()] = [],  # noqa: B006
        type: Annotated[list[str], Query()] = [],  # noqa: B006
        offset: str | None = None,
        token: str | None = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> Response:
        try:
            claims = authorize(creds, token)
            wanted = _allowed(_filter(symbol, strategy, type), claims)
            since = _since(last_event_id, offset)
        except Refused as exc:
            return exc.response()
        if not has_room():
            metrics.connections_refused.labels("max_connections").inc()
            return Response(FULL_BODY, 503, {"Retry-After": RETRY_AFTER_S}, "application/json")
        # Counted from here, with no await since the room check.
        client = hub.connect(wanted)
        expires = claims.seconds_left() if claims is not None else None
        response = EventStream(hub, client, settings.sse_heartbeat_s, expires)
        if since is None:
            hub.join(client)
        else:
            response.catch_up = (catch_up, since)
        return response

    return router


def _allowed(wanted: StreamFilter, claims: Claims | None) -> StreamFilter:
    """The filter within the token's ``symbols`` claim: none asked means all it allows."""
    if claims is None or claims.symbols is None:
        return wanted
    if refused := claims.refused(sorted(wanted.symbols)):
        raise Refused(403, "forbidden", f"not allowed: {', '.join(refused[:10])}")
    if wanted.symbols:
        return wanted
    return StreamFilter(claims.symbols, wanted.strategies, wanted.types)
