"""Telegram Bot API ``sendMessage``: ``POST <api>/bot<token>/sendMessage``.

Body ``{"chat_id", "text", "parse_mode", "link_preview_options", "disable_notification"}``.
Telegram answers ``{"ok": true, "result": {...}}``; a refusal is ``{"ok": false,
"error_code", "description"}`` with the same HTTP status, and a throttle is 429 with
``parameters.retry_after`` (seconds), which wins over any header. About 30 messages a
second per bot (and 1 a second per chat) are allowed: set ``rate_per_s``.

The token is part of the URL, so no error message here contains the URL. Values are
escaped for the chosen ``parse_mode`` (HTML by default), markup in the template stays.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import AnyHttpUrl, Field, field_validator

from notifier.destinations import _http
from notifier.destinations.base import (
    Delivery,
    DeliveryError,
    Destination,
    DestinationConfig,
    SecretRef,
)
from notifier.destinations.templates import TemplatedConfig, truncate

#: sendMessage refuses text longer than 4,096 characters.
MAX_TEXT = 4_096
API_BASE_URL = "https://api.telegram.org"
# MarkdownV2: every one of these must be escaped outside markup (Bot API, "Formatting options").
_MARKDOWN_V2 = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")
ParseMode = Literal["HTML", "MarkdownV2"]


def escape_html(value: str) -> str:
    return html.escape(value, quote=False)


def escape_markdown_v2(value: str) -> str:
    return _MARKDOWN_V2.sub(r"\\\1", value)


ESCAPES: dict[str | None, Callable[[str], str]] = {
    "HTML": escape_html,
    "MarkdownV2": escape_markdown_v2,
    None: str,
}


class TelegramConfig(TemplatedConfig):
    type: Literal["telegram"] = "telegram"
    bot_token: SecretRef
    #: A chat's numeric id ("-100123...") or a public channel's "@name".
    chat_id: str = Field(pattern=r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
    parse_mode: ParseMode | None = "HTML"
    disable_notification: bool = False
    #: The Bot API's address; a local Bot API server, or a loopback stand-in in tests.
    api_base_url: AnyHttpUrl = AnyHttpUrl(API_BASE_URL)

    @field_validator("chat_id", mode="before")
    @classmethod
    def _numeric_id(cls, value: object) -> object:
        # YAML reads -100123 as a number; Telegram takes either form.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretRef) -> SecretRef:
        try:
            token = value.reveal()
        except ValueError:
            return value  # not set: the loader says so, naming the variable
        _check_token(token)
        return value

    def build(self) -> Destination:
        return TelegramDestination(self)


class TelegramDestination:
    def __init__(self, config: TelegramConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config: DestinationConfig = config
        self._telegram = config
        token = _check_token(config.bot_token.reveal())
        base = str(config.api_base_url).rstrip("/")
        self._url = f"{base}/bot{token}/sendMessage"
        self._client = client or _http.make_client(config.timeout_s)

    def payload(self, delivery: Delivery) -> dict[str, Any]:
        mode = self._telegram.parse_mode
        text = self._telegram.text(delivery.signal, ESCAPES[mode])
        if len(text) > MAX_TEXT and mode is not None:
            # Cutting markup can leave a tag open or an entity half, which Telegram refuses
            # for good ("can't parse entities"): an overlong message goes as plain text.
            mode = None
            text = self._telegram.text(delivery.signal)
        body: dict[str, Any] = {
            "chat_id": self._telegram.chat_id,
            "text": truncate(text, MAX_TEXT),
            "link_preview_options": {"is_disabled": True},
        }
        if mode is not None:
            body["parse_mode"] = mode
        if self._telegram.disable_notification:
            body["disable_notification"] = True
        return body

    async def send(self, delivery: Delivery) -> None:
        what = f"telegram {self.config.name}"
        response = await _http.post(self._client, self._url, what, json=self.payload(delivery))
        answer = _http.json_body(response)
        parameters = answer.get("parameters")
        retry_after = None
        if isinstance(parameters, dict):
            retry_after = _http.number(parameters.get("retry_after"))
        if not response.is_success:
            description = answer.get("description")
            _http.raise_for_answer(
                response,
                what,
                retry_after_s=retry_after,
                detail=description if isinstance(description, str) else None,
            )
        if answer.get("ok") is not True:
            # Not the Bot API answering (a proxy's page?): worth another try.
            raise DeliveryError(f"{what}: HTTP {response.status_code} without ok: true")

    async def aclose(self) -> None:
        await self._client.aclose()


def _check_token(token: str) -> str:
    if not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", token):
        raise ValueError("not a bot token like '123456:ABC-DEF...'")  # never the value
    return token
