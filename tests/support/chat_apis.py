"""Stand-ins for the chat APIs: responders for ``HttpReceiver`` that check a request as the
real service does and answer as its documentation says.

- ``slack_api``: incoming webhook; 200 ``ok``, 400 ``invalid_payload`` (not JSON) or
  ``no_text`` (neither ``text`` nor ``blocks``).
- ``discord_api``: webhook execute; 204, or 200 with the message under ``?wait=true``;
  400 ``{"code": 50006, "message": "Cannot send an empty message"}``, 400 ``50035`` for
  content over 2,000 characters.
- ``telegram_api(token)``: ``POST /bot<token>/sendMessage``; 200 ``{"ok": true, "result"}``,
  401 for another token, 404 for another method, 400 for an empty chat_id or text, text over
  4,096 characters, or an unknown ``parse_mode``.

A script on the receiver (rate limits, outages) still answers first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tests.support.receivers import Recorded, Reply


def _json(request: Recorded) -> dict[str, Any] | None:
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def slack_api(request: Recorded) -> Reply:
    body = _json(request)
    if body is None:
        return Reply(400, b"invalid_payload")
    if not body.get("text") and not body.get("blocks"):
        return Reply(400, b"no_text")
    return Reply.slack_ok()


def discord_api(request: Recorded) -> Reply:
    body = _json(request)
    if body is None:
        return Reply(
            400, json={"code": 50109, "message": "The request body contains invalid JSON."}
        )
    content = body.get("content") or ""
    if not content and not body.get("embeds"):
        return Reply(400, json={"code": 50006, "message": "Cannot send an empty message"})
    if len(content) > 2000:
        return Reply(400, json={"code": 50035, "message": "Invalid Form Body"})
    if request.query.get("wait") == ["true"]:
        return Reply(200, json={"id": str(len(content)), "type": 0, "content": content})
    return Reply.discord_ok()


def telegram_api(token: str) -> Callable[[Recorded], Reply]:
    def answer(request: Recorded) -> Reply:
        prefix, _, method = request.path.rpartition("/")
        if prefix != f"/bot{token}":
            return Reply.telegram_error(401, "Unauthorized")
        if method != "sendMessage":
            return Reply.telegram_error(404, "Not Found")
        body = _json(request) or {}
        refusal = _send_message_refusal(body)
        if refusal:
            return Reply.telegram_error(400, f"Bad Request: {refusal}")
        message = {"message_id": 1, "chat": {"id": body["chat_id"]}, "text": body["text"]}
        return Reply(200, json={"ok": True, "result": message})

    return answer


def _send_message_refusal(body: dict[str, Any]) -> str | None:
    text = body.get("text")
    if not body.get("chat_id"):
        return "chat_id is empty"
    if not isinstance(text, str) or not text.strip():
        return "message text is empty"
    if len(text) > 4096:
        return "message is too long"
    if body.get("parse_mode") not in (None, "HTML", "MarkdownV2", "Markdown"):
        return "unsupported parse_mode"
    return None
