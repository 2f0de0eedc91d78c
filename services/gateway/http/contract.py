"""The published contract: an AsyncAPI 3.0 document generated from the models the code uses.

It describes, from the gateway's side, the Redis channel signals travel on, every Socket.IO
event in both directions (with the acks as replies) and the SSE stream. Every payload is the
JSON Schema pydantic generates from the model that the producing code builds its messages
with: ``Signal`` (common/schema.py), ``SystemMessage`` (http/api.py), ``RecoveryAnswer``
(delivery/recovery.py), the acks and auth events (clients/payloads.py). So a field added to
a model shows up here, and a payload the code changes without its model fails
tests/e2e/test_contract.py, which checks what a running system really sends.

``/asyncapi.json`` serves it (with API_DOCS, like FastAPI's ``/openapi.json``); docs/asyncapi.json
and docs/openapi.json are rendered copies (``scripts/gen-contract``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from common import constants as c
from common.schema import Signal
from gateway.clients import payloads as p
from gateway.delivery.recovery import RecoveryAnswer
from gateway.http.api import SystemMessage
from gateway.http.bars import Bar

ASYNCAPI_PATH = "/asyncapi.json"
#: Version of the described API (both documents); bump it when the contract changes.
API_VERSION = "1.2.0"
SCHEMAS = "#/components/schemas/"
MODELS: tuple[type[BaseModel], ...] = (
    Signal,
    SystemMessage,
    RecoveryAnswer,
    p.ConnectAuth,
    p.ConnectRefused,
    p.FilterRequest,
    p.FilterAck,
    p.Refusal,
    p.AuthRefreshRequest,
    p.AuthRefreshed,
    p.AuthExpiring,
    p.AuthExpired,
    Bar,
)


@dataclass(frozen=True)
class Message:
    """One message of a channel: its id in the document, its name on the wire, its payload."""

    key: str
    name: str
    payload: dict[str, Any]
    summary: str


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": SCHEMAS + model.__name__}


def one_of(*models: type[BaseModel]) -> dict[str, Any]:
    return {"oneOf": [ref(m) for m in models]}


# What a subscribe/unsubscribe carries: the object form, or the original list or string.
FILTER_PAYLOAD = {
    "oneOf": [
        ref(p.FilterRequest),
        {"type": "array", "items": {"type": "string"}},
        {"type": "string"},
    ]
}
SIGNAL = Message("new_signal", c.SIGNAL_EVENT, ref(Signal), "One signal (live or recovered).")
SERVER_EVENTS = (
    SIGNAL,
    Message("system_message", c.SYSTEM_EVENT, ref(SystemMessage), "An operator's broadcast."),
    Message("recovery", c.RECOVERY_EVENT, ref(RecoveryAnswer), "How a resume went."),
    Message("auth_expiring", c.AUTH_EXPIRING_EVENT, ref(p.AuthExpiring), "Refresh the token."),
    Message("auth_expired", c.AUTH_EXPIRED_EVENT, ref(p.AuthExpired), "Disconnected next."),
    Message("new_bar", c.BAR_EVENT, ref(Bar), "A closed bar of a symbol the filter takes."),
)
#: Client requests and the ack each gets (its reply).
REQUESTS = (
    (
        Message("subscribe", c.SUBSCRIBE_EVENT, FILTER_PAYLOAD, "Add values to the filter."),
        Message("subscribe_ack", "ack", one_of(p.FilterAck, p.Refusal), "The filter in force."),
    ),
    (
        Message("unsubscribe", c.UNSUBSCRIBE_EVENT, FILTER_PAYLOAD, "Remove values (none: all)."),
        Message("unsubscribe_ack", "ack", one_of(p.FilterAck, p.Refusal), "The filter in force."),
    ),
    (
        Message("auth_refresh", c.AUTH_REFRESH_EVENT, ref(p.AuthRefreshRequest), "A new JWT."),
        Message("auth_refresh_ack", "ack", one_of(p.AuthRefreshed, p.Refusal), "Accepted?"),
    ),
    (
        Message(
            "connect", "connect", ref(p.ConnectAuth), "The CONNECT packet's auth (not an event)."
        ),
        Message("connect_error", "connect_error", ref(p.ConnectRefused), "A refused connection."),
    ),
)
STREAM_EVENTS = (
    Message(
        "sse_signal", "signal", ref(Signal), "'id: <offset>', 'event: signal', 'data: <json>'."
    ),
    Message("sse_recovery", "recovery", ref(RecoveryAnswer), "After a resume's gap, once live."),
)


def _message(message: Message) -> dict[str, Any]:
    return {
        "name": message.name,
        "summary": message.summary,
        "contentType": "application/json",
        "payload": message.payload,
    }


def _channel(
    address: str, server: str, description: str, messages: list[Message]
) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "servers": [{"$ref": f"#/servers/{server}"}],
        "messages": {m.key: {"$ref": f"#/components/messages/{m.key}"} for m in messages},
    }


def _operation(
    action: str, channel: str, message: Message, reply: Message | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": message.summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message.key}"}],
    }
    if reply is not None:
        operation["reply"] = {
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{reply.key}"}],
        }
    return operation


def _servers() -> dict[str, Any]:
    host = {"gateway": {"default": "localhost:8000", "description": "A gateway replica."}}
    return {
        "redis": {
            "host": "{redis}",
            "protocol": "redis",
            "description": "Redis Pub/Sub: monitors and the publish API send, gateways receive.",
            "variables": {"redis": {"default": "localhost:6379"}},
        },
        "socketio": {
            "host": "{gateway}",
            "pathname": "/socket.io/",
            "protocol": "ws",
            "description": "Socket.IO 5 over Engine.IO 4 (WebSocket, or HTTP long-polling), "
            "default namespace '/'. Each event's payload is its one argument.",
            "variables": host,
        },
        "http": {
            "host": "{gateway}",
            "protocol": "http",
            "description": "Server-Sent Events (text/event-stream); other HTTP: /openapi.json.",
            "variables": host,
        },
    }


def _channels(channel: str) -> dict[str, Any]:
    socket_messages = [*SERVER_EVENTS, *(m for pair in REQUESTS for m in pair)]
    return {
        "signals": _channel(
            channel,
            "redis",
            "Every signal, as JSON; 'offset' is set when it went through the publish script "
            "(monitor, POST /api/signals), which also keeps it in the history.",
            [SIGNAL],
        ),
        "socketio": _channel(
            c.NAMESPACE, "socketio", "The gateway's Socket.IO namespace.", socket_messages
        ),
        "stream": _channel(
            "/api/signals/stream",
            "http",
            "GET with filters; resumable with Last-Event-ID. Idle streams get ': ping' comments.",
            list(STREAM_EVENTS),
        ),
    }


def _operations() -> dict[str, Any]:
    operations = {
        "relaySignals": _operation("receive", "signals", SIGNAL),
        "publishSignals": _operation("send", "signals", SIGNAL),
    }
    for event in SERVER_EVENTS:
        operations[f"send_{event.key}"] = _operation("send", "socketio", event)
    for request, ack in REQUESTS:
        operations[f"receive_{request.key}"] = _operation("receive", "socketio", request, ack)
    for event in STREAM_EVENTS:
        operations[f"send_{event.key}"] = _operation("send", "stream", event)
    return operations


@cache
def asyncapi_document(channel: str = c.DEFAULT_CHANNEL) -> dict[str, Any]:
    """The AsyncAPI 3.0 document; ``channel`` is SIGNAL_CHANNEL."""
    _, top = models_json_schema(
        [(m, "validation") for m in MODELS], ref_template=SCHEMAS + "{model}"
    )
    messages = [*SERVER_EVENTS, *(m for pair in REQUESTS for m in pair), *STREAM_EVENTS]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Quantum Signals",
            "version": API_VERSION,
            "description": "Trading signals from Redis to Socket.IO and SSE clients "
            "(docs/api.md, docs/delivery.md). HTTP: /openapi.json.",
        },
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": _channels(channel),
        "operations": _operations(),
        "components": {
            "schemas": top["$defs"],
            "messages": {m.key: _message(m) for m in messages},
        },
    }


def render(document: dict[str, Any]) -> str:
    """How docs/asyncapi.json and docs/openapi.json are written (scripts/gen-contract)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def contract_router(channel: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(ASYNCAPI_PATH)
    async def asyncapi() -> JSONResponse:
        return JSONResponse(asyncapi_document(channel))

    return router
