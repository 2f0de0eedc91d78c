"""The body of POST /api/signals: one signal or a batch, checked whole before anything is sent.

Pure: no I/O. Each item must pass the shared contract (``common.schema.parse_signal``, the
same check the relay applies to what it delivers), so the API can never publish a signal
that clients would then refuse. The first bad item is named by its index and field, and
nothing of the batch is published (the caller validates every item before publishing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from common.constants import OFFSET_FIELD
from common.offsets import MAX_POSITION_LENGTH
from common.schema import Signal, SignalRejected, parse_signal

#: Bytes the publish script adds to a message: ``"offset":"<position>",``.
OFFSET_ROOM = len(f'"{OFFSET_FIELD}":"",') + MAX_POSITION_LENGTH


@dataclass
class InvalidBody(Exception):
    """A refused body: the HTTP status and the JSON answer (``error`` first)."""

    status: int
    error: str
    message: str
    index: int | None = None
    field: str | None = None

    def answer(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.error == "invalid_signal":
            body |= {"index": self.index, "field": self.field}
        return body


def parse_body(body: bytes, batch_max: int, max_message_bytes: int) -> list[dict[str, Any]]:
    """The signals of a request body, in order, each with an ``id``; raises ``InvalidBody``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(400, "invalid_json", str(exc)) from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidBody(422, "invalid_body", "an empty batch publishes nothing")
    if len(items) > batch_max:
        raise InvalidBody(422, "invalid_body", f"at most {batch_max} signals per request")
    return [checked(i, item, max_message_bytes) for i, item in enumerate(items)]


def checked(index: int, item: object, max_message_bytes: int) -> dict[str, Any]:
    """``item`` as it will be published (an ``id`` made when it has none), or ``InvalidBody``."""
    if not isinstance(item, dict):
        raise _invalid(index, None, f"a signal is a JSON object, got {type(item).__name__}")
    if OFFSET_FIELD in item:
        # The publish script prepends the position; a second "offset" key would shadow it.
        raise _invalid(index, OFFSET_FIELD, "set by the gateway; leave it out")
    if item.get("id") is None:
        item = {"id": uuid.uuid4().hex, **{k: v for k, v in item.items() if k != "id"}}
    try:
        Signal.model_validate(item)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise _invalid(index, field, first["msg"]) from None
    try:
        # Size and nesting depth as the relay will judge the message, offset included.
        parse_signal(orjson.dumps(item), max_message_bytes - OFFSET_ROOM)
    except SignalRejected as exc:
        raise _invalid(index, None, str(exc)) from None
    return item


def _invalid(index: int, field: str | None, message: str) -> InvalidBody:
    return InvalidBody(422, "invalid_signal", message, index, field)
