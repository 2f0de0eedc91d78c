"""HTTP API: the admin broadcast (signals: publish.py and history.py)."""

# No `from __future__ import annotations`: FastAPI must see the Query() built in a closure.
import hmac
import time
from typing import Annotated, Literal

import socketio
from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from common.constants import SYSTEM_EVENT
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

bearer = HTTPBearer(auto_error=False)


Level = Literal["info", "warning", "critical"]


class BroadcastRequest(BaseModel):
    message: str = Field(min_length=1, max_length=2000)
    level: Level = "info"


class SystemMessage(BaseModel):
    """The ``system_message`` event every client on every replica gets (docs/api.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str = Field(min_length=1, max_length=2000)
    level: Level
    ts: float = Field(description="When the gateway sent it, Unix seconds.")


class BroadcastAccepted(BaseModel):
    status: Literal["sent"] = "sent"


class DetailError(BaseModel):
    """FastAPI's refusal body, which the broadcast's 401/403 answer with."""

    detail: str


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
        "/broadcast",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(require_admin)],
        responses={401: {"model": DetailError}, 403: {"model": DetailError}},
    )
    async def broadcast(body: BroadcastRequest) -> BroadcastAccepted:
        # A plain emit goes through the Redis manager: every client on every replica.
        payload = SystemMessage(message=body.message, level=body.level, ts=time.time())
        await sio.emit(SYSTEM_EVENT, payload.model_dump())
        metrics.broadcasts.inc()
        return BroadcastAccepted()

    return router
