"""Discord incoming webhook: ``POST {"content": ..., "embeds": [...]}`` with ``?wait=true``.

``wait=true`` makes Discord answer 200 with the created message once it exists, rather
than 204 once queued, so "accepted" means posted. A throttle is 429 with a JSON body whose
``retry_after`` (seconds, fractional) is more precise than the header; it wins. Mentions
are switched off (``allowed_mentions: {parse: []}``) and values are escaped for Discord's
markdown, so a signal cannot ping @everyone or format itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import field_validator

from notifier.destinations import _http
from notifier.destinations.base import Delivery, Destination, DestinationConfig, SecretRef
from notifier.destinations.templates import TemplatedConfig, signal_fields, truncate

#: Discord's limits: content 2,000 characters, embed title 256, description 4,096.
MAX_CONTENT = 2_000
MAX_TITLE = 256
MAX_DESCRIPTION = 4_096
COLOURS = {"BUY": 0x2EB67D, "SELL": 0xE01E5A}
_MARKDOWN = re.compile(r"([\\*_~`|>])")


def escape_markdown(value: str) -> str:
    """Backslash before Discord's inline markdown characters."""
    return _MARKDOWN.sub(r"\\\1", value)


class DiscordConfig(TemplatedConfig):
    type: Literal["discord"] = "discord"
    webhook_url: SecretRef
    #: Also send an embed (title, reason, strategy and timeframe fields, coloured by side).
    embed: bool = False
    #: Overrides the hook's default name in the channel.
    username: str | None = None

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretRef) -> SecretRef:
        return _http.url_secret(value)

    def build(self) -> Destination:
        return DiscordDestination(self)


class DiscordDestination:
    def __init__(self, config: DiscordConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config: DestinationConfig = config
        self._discord = config
        url = httpx.URL(_http.reveal_url(config.webhook_url))
        self._url = str(url.copy_merge_params({"wait": "true"}))
        self._client = client or _http.make_client(config.timeout_s)

    def payload(self, delivery: Delivery) -> dict[str, Any]:
        text = self._discord.text(delivery.signal, escape_markdown)
        body: dict[str, Any] = {
            "content": truncate(text, MAX_CONTENT),
            "allowed_mentions": {"parse": []},
        }
        if self._discord.username:
            body["username"] = self._discord.username
        if self._discord.embed:
            body["embeds"] = [_embed(delivery.signal)]
        return body

    async def send(self, delivery: Delivery) -> None:
        what = f"discord {self.config.name}"
        response = await _http.post(self._client, self._url, what, json=self.payload(delivery))
        retry_after = None
        if response.status_code == 429:
            retry_after = _http.number(_http.json_body(response).get("retry_after"))
        _http.raise_for_answer(response, what, retry_after_s=retry_after)

    async def aclose(self) -> None:
        await self._client.aclose()


def _embed(signal: Any) -> dict[str, Any]:
    fields = {k: escape_markdown(v) for k, v in signal_fields(signal).items()}
    embed: dict[str, Any] = {"title": truncate(fields["headline"] or "signal", MAX_TITLE)}
    if fields["why"]:
        embed["description"] = truncate(fields["why"], MAX_DESCRIPTION)
    if fields["type"] in COLOURS:
        embed["color"] = COLOURS[fields["type"]]
    ts = signal.get("ts")
    if _http.number(ts) is not None and 0 < ts < 32503680000:  # up to the year 3000
        embed["timestamp"] = datetime.fromtimestamp(ts, UTC).isoformat()
    inline = [("Strategy", fields["strategy"]), ("Timeframe", fields["timeframe"])]
    embed["fields"] = [{"name": n, "value": v, "inline": True} for n, v in inline if v]
    raw_id = signal.get("id")
    if isinstance(raw_id, str) and raw_id:
        embed["footer"] = {"text": raw_id}  # footers are not markdown: no escaping
    return embed
