"""POST /api/signals (and /api/signals/hook/{secret}): publish like the monitor does.

Every signal goes through the monitor's atomic script (common/publish.py): dedupe by id,
history entry, epoch, PUBLISH. A batch is one MULTI/EXEC round trip, so it is published
whole, in order, or not at all. The whole body is validated before anything is sent.
The webhook form carries the secret in the path: this module never logs the path, and
the gateway runs uvicorn without an access log (docs/api.md says what else may log URLs).
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at run time.
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from common.logging import get_logger
from common.publish import SignalPublisher
from common.redis import REDIS_ERRORS
from common.schema import Signal
from gateway.http.errors import ApiError, Refused, error_responses
from gateway.http.publish_auth import PublishAuth
from gateway.http.signal_batch import InvalidBody, parse_body
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

log = get_logger(__name__)
bearer = HTTPBearer(auto_error=False)


class PublishResult(BaseModel):
    id: str = Field(description="The signal's id (made by the gateway when the body had none).")
    offset: str | None = Field(
        description="Its history position '<epoch>:<ms>-<seq>'; for a duplicate, the original "
        "one (null only for ids published before positions were stored)."
    )
    duplicate: bool = Field(description="True: this id was published before; nothing was sent.")


class PublishResponse(BaseModel):
    results: list[PublishResult]


class TooLarge(Exception):
    pass


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    # Through the model the OpenAPI document declares, so the two cannot part.
    answer = ApiError.model_validate(body).model_dump(exclude_unset=True)
    return JSONResponse(answer, status_code=status, headers=headers)


def _request_body_doc(batch_max: int) -> dict[str, Any]:
    signal = Signal.model_json_schema()
    batch = {"type": "array", "items": signal, "minItems": 1, "maxItems": batch_max}
    content = {"schema": {"oneOf": [signal, batch]}}
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # stop reading once past the bound
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def publish_router(
    settings: GatewaySettings,
    publisher: SignalPublisher,
    auth: PublishAuth,
    metrics: GatewayMetrics,
) -> APIRouter:
    router = APIRouter(prefix="/api")
    limit = settings.max_message_bytes * settings.publish_batch_max
    docs: dict[str, Any] = {
        "response_model": PublishResponse,
        "openapi_extra": _request_body_doc(settings.publish_batch_max),
        "responses": error_responses(400, 401, 403, 413, 422, 429, 503),
    }

    async def handle(request: Request, identify: Any) -> Response:
        started = time.perf_counter()
        try:
            caller: str = identify()
            auth.admit(caller)
        except Refused as exc:
            outcome = "rate_limited" if exc.status == 429 else "unauthorized"
            metrics.api_published.labels(outcome).inc()
            return exc.response()
        try:
            body = await _read_limited(request, limit)
            signals = parse_body(body, settings.publish_batch_max, settings.max_message_bytes)
        except TooLarge:
            metrics.api_published.labels("invalid").inc()
            return _error(413, {"error": "too_large", "message": f"body over {limit} bytes"})
        except InvalidBody as exc:
            metrics.api_published.labels("invalid").inc()
            return _error(exc.status, exc.answer())
        return await _publish(caller, signals, started)

    async def _publish(caller: str, signals: list[dict[str, Any]], started: float) -> Response:
        try:
            if len(signals) == 1:
                results = [await publisher.publish_one(signals[0])]
            else:
                results = await publisher.publish_batch(signals)
        except REDIS_ERRORS as exc:
            metrics.api_published.labels("unavailable").inc()
            log.warning("api_publish_failed", publisher=caller, error=str(exc))
            return _error(503, {"error": "redis_unavailable"})
        duplicates = sum(r.duplicate for r in results)
        metrics.api_published.labels("duplicate").inc(duplicates)
        metrics.api_published.labels("published").inc(len(results) - duplicates)
        metrics.api_publish_latency.observe(time.perf_counter() - started)
        log.info("api_published", publisher=caller, signals=len(results), duplicates=duplicates)
        answer = PublishResponse(
            results=[
                PublishResult(id=str(s["id"]), offset=r.position, duplicate=r.duplicate)
                for s, r in zip(signals, results, strict=True)
            ]
        )
        return Response(answer.model_dump_json(), media_type="application/json")

    @router.post("/signals", **docs)
    async def publish(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Response:
        """Publish one signal or a batch (Bearer publisher token or publisher JWT)."""
        return await handle(request, lambda: auth.by_bearer(creds.credentials if creds else None))

    @router.post("/signals/hook/{secret}", **docs)
    async def publish_hook(request: Request, secret: str) -> Response:
        """The same, for webhooks that cannot set headers: a PUBLISH_TOKENS secret in the path."""
        return await handle(request, lambda: auth.by_secret(secret))

    return router
