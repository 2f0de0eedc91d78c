"""Per-connection authentication state: who a client is, what it may see, token expiry.

The token comes in the Socket.IO ``auth`` payload (``{"token": "<JWT>"}``). A client whose
claims list symbols may only be in those symbols' rooms; a token that expires while
connected is announced (``auth_expiring``), then the client is disconnected
(``auth_expired``) unless it sent a new token (``auth_refresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import socketio

from common.constants import AUTH_EXPIRED_EVENT, AUTH_EXPIRING_EVENT
from common.logging import get_logger
from gateway.clients.auth import AuthError, Claims, TokenVerifier, token_from_auth
from gateway.clients.payloads import AuthExpired, AuthExpiring, AuthRefreshed, Refusal
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

log = get_logger(__name__)


class AuthSessions:
    def __init__(
        self, sio: socketio.AsyncServer, settings: GatewaySettings, metrics: GatewayMetrics
    ) -> None:
        self._sio = sio
        self._settings = settings
        self._metrics = metrics
        self._verifier = TokenVerifier(settings) if settings.auth_enabled else None
        self._claims: dict[str, Claims] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}

    def authenticate(self, sid: str, auth: Any) -> Claims | None:
        """Verify the connect-time token; raise ``ConnectionRefusedError`` with the reason."""
        token = token_from_auth(auth)
        if self._verifier is None or (token is None and not self._settings.auth_required):
            return None
        try:
            claims = self._verifier.verify(token)
        except AuthError as exc:
            self._refused(exc)
            raise socketio.exceptions.ConnectionRefusedError(exc.reason.value) from None
        self._claims[sid] = claims
        self._watchers[sid] = asyncio.create_task(self._watch_expiry(sid))
        return claims

    def allowed(self, sid: str) -> frozenset[str] | None:
        """Symbols this client may see; None means all."""
        claims = self._claims.get(sid)
        return None if claims is None else claims.symbols

    def refused(self, sid: str, symbols: list[str]) -> list[str]:
        claims = self._claims.get(sid)
        refused = [] if claims is None else claims.refused(symbols)
        if refused:
            self._metrics.subscribe_refused.inc()
        return refused

    async def refresh(self, sid: str, data: Any) -> dict[str, Any]:
        current = self._claims.get(sid)
        if self._verifier is None or current is None:
            return Refusal(error="no_auth_session").model_dump()
        try:
            new = self._verifier.refresh(current, token_from_auth(data))
        except AuthError as exc:
            self._refused(exc)
            return Refusal(error=exc.reason.value).model_dump()
        self._claims[sid] = new
        return AuthRefreshed(expires_at=new.expires_at).model_dump()

    def forget(self, sid: str) -> None:
        self._claims.pop(sid, None)
        watcher = self._watchers.pop(sid, None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()

    def _refused(self, exc: AuthError) -> None:
        self._metrics.auth_refused.labels(exc.reason.value).inc()
        log.info("auth_refused", reason=exc.reason.value)  # never the token itself

    async def _watch_expiry(self, sid: str) -> None:
        warn_s = self._settings.auth_warn_before_s
        while (claims := self._claims.get(sid)) is not None:
            if claims.seconds_left() > warn_s:
                await asyncio.sleep(claims.seconds_left() - warn_s)
                continue
            payload = AuthExpiring(expires_at=claims.expires_at).model_dump()
            await self._sio.emit(AUTH_EXPIRING_EVENT, payload, to=sid, ignore_queue=True)
            await asyncio.sleep(max(0.0, claims.seconds_left()))
            if self._claims.get(sid) is claims:  # not refreshed in time
                expired = AuthExpired().model_dump()
                await self._sio.emit(AUTH_EXPIRED_EVENT, expired, to=sid, ignore_queue=True)
                self._metrics.auth_expired.inc()
                with contextlib.suppress(Exception):
                    await self._sio.disconnect(sid, ignore_queue=True)
                return
