"""HTTP API: the admin broadcast (signals: publish.py and history.py)."""

# No `from __future__ import annotations`: FastAPI must see the Query() built in a closure.
import hmac
import time
from typing import Annotated

import socketio
from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from common.constants import SYSTEM_EVENT
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

bearer = HTTPBearer(auto_error=False)


class BroadcastRequest(BaseModel):
    message: str = Field(min_length=1, max_length=2000)
    level: str = Field(default="info", pattern="^(info|warning|critical)$")


def api_router(
    settings: GatewaySettings,
    sio: socketio.AsyncServer,
    metrics: GatewayMetrics,
) -> APIRouter:
    router = APIRouter(prefix="/api")

    def require_admin(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if settings.admin_token is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "broadcast disabled: ADMIN_TOKEN unset")
        expected = settings.admin_token.get_secret_value().encode()
        given = creds.credentials.encode() if creds else b""
        # Constant-time: the comparison must not leak how much of the token matched.
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or missing bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @router.post(
        "/broadcast", status_code=status.HTTP_202_ACCEPTED, dependencies=[Depends(require_admin)]
    )
    async def broadcast(body: BroadcastRequest) -> dict[str, str]:
        # A plain emit goes through the Redis manager: every client on every replica.
        payload = {"message": body.message, "level": body.level, "ts": time.time()}
        await sio.emit(SYSTEM_EVENT, payload)
        metrics.broadcasts.inc()
        return {"status": "sent"}

    return router
