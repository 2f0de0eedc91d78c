"""Slack incoming webhook: ``POST {"text": ...}`` (and, optionally, Block Kit blocks).

Slack answers 200 "ok"; a refusal is a 4xx with a short reason ("invalid_payload",
"channel_is_archived", ...) and a throttle is 429 with ``Retry-After``, which the shared
HTTP mapping reads. The hook's URL is its credential, so it is a secret reference.
Values are escaped for mrkdwn (``&``, ``<``, ``>``), so a signal cannot mention @channel
or forge a link; markup in the template itself stays.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import field_validator

from notifier.destinations import _http
from notifier.destinations.base import Delivery, Destination, DestinationConfig, SecretRef
from notifier.destinations.templates import TemplatedConfig, signal_fields, truncate

#: Slack truncates ``text`` beyond 40,000 characters; a section block holds 3,000.
MAX_TEXT = 40_000
MAX_SECTION = 3_000


def escape_mrkdwn(value: str) -> str:
    """Slack's three control characters, as its formatting guide says to escape them."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackConfig(TemplatedConfig):
    type: Literal["slack"] = "slack"
    webhook_url: SecretRef
    #: Also send the text as a Block Kit section with a context line (strategy, time, id);
    #: ``text`` stays as the notification's fallback.
    blocks: bool = False

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretRef) -> SecretRef:
        return _http.url_secret(value)

    def build(self) -> Destination:
        return SlackDestination(self)


class SlackDestination:
    def __init__(self, config: SlackConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config: DestinationConfig = config
        self._slack = config
        self._url = _http.reveal_url(config.webhook_url)
        self._client = client or _http.make_client(config.timeout_s)

    def payload(self, delivery: Delivery) -> dict[str, Any]:
        text = self._slack.text(delivery.signal, escape_mrkdwn)
        body: dict[str, Any] = {"text": truncate(text, MAX_TEXT)}
        if self._slack.blocks:
            body["blocks"] = _blocks(text, delivery)
        return body

    async def send(self, delivery: Delivery) -> None:
        what = f"slack {self.config.name}"
        response = await _http.post(self._client, self._url, what, json=self.payload(delivery))
        _http.raise_for_answer(response, what)

    async def aclose(self) -> None:
        await self._client.aclose()


def _blocks(text: str, delivery: Delivery) -> list[dict[str, Any]]:
    fields = signal_fields(delivery.signal)
    context = " · ".join(
        escape_mrkdwn(p) for p in (fields["context"], fields["time"], fields["id"]) if p
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}}
    ]
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return blocks
