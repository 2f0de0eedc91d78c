"""Discord incoming webhook against a loopback stand-in that answers as Discord documents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from notifier.destinations.base import DeliveryError, Destination
from notifier.destinations.discord import DiscordConfig
from tests.integration.notifier.dest_common import SUMMARY, sample_delivery
from tests.support import chat_apis
from tests.support.receivers import HttpReceiver, Reply


@pytest.fixture
def discord_api() -> Iterator[HttpReceiver]:
    with HttpReceiver(responder=chat_apis.discord_api) as rx:
        yield rx


async def discord(
    rx: HttpReceiver, monkeypatch: pytest.MonkeyPatch, **options: object
) -> AsyncIterator[Destination]:
    monkeypatch.setenv("QS_TEST_DISCORD_URL", f"{rx.url}/api/webhooks/123/tok-en")
    config = DiscordConfig.model_validate(
        {"name": "desk", "webhook_url": {"env": "QS_TEST_DISCORD_URL"}, "timeout_s": 1, **options}
    )
    destination = config.build()
    yield destination
    await destination.aclose()


@pytest.fixture
async def plain(
    discord_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Destination]:
    async for d in discord(discord_api, monkeypatch):
        yield d


async def test_content(discord_api: HttpReceiver, plain: Destination) -> None:
    await plain.send(sample_delivery())
    [req] = discord_api.requests
    assert (req.method, req.path) == ("POST", "/api/webhooks/123/tok-en")
    assert req.query == {"wait": ["true"]}
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {
        "content": SUMMARY.replace("sma_cross", "sma\\_cross"),
        "allowed_mentions": {"parse": []},
    }


async def test_embed_and_username(
    discord_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for destination in discord(discord_api, monkeypatch, embed=True, username="QS"):
        await destination.send(sample_delivery(type="SELL", reason="@everyone *now*"))
    [(request, reply)] = discord_api.answered
    assert reply.status == 200  # wait=true: the stand-in answers with the message
    body = request.json()
    assert body["username"] == "QS"
    assert body["content"].endswith(": @everyone \\*now\\*")
    assert body["allowed_mentions"] == {"parse": []}  # "@everyone" pings nobody
    [embed] = body["embeds"]
    assert embed == {
        "title": "SELL BTC-USD at 60,112.40",
        "description": "@everyone \\*now\\*",
        "color": 0xE01E5A,
        "timestamp": "2023-11-14T22:13:20+00:00",
        "fields": [
            {"name": "Strategy", "value": "sma\\_cross", "inline": True},
            {"name": "Timeframe", "value": "1m", "inline": True},
        ],
        "footer": {"text": "BTC-USD:sma_cross:1700000000000"},
    }


async def test_rate_limited_body_retry_after(discord_api: HttpReceiver, plain: Destination) -> None:
    discord_api.script(Reply.discord_rate_limited(1.25))
    with pytest.raises(DeliveryError) as caught:
        await plain.send(sample_delivery())
    assert not caught.value.permanent and caught.value.retry_after_s == 1.25


async def test_rate_limited_header_only(discord_api: HttpReceiver, plain: Destination) -> None:
    discord_api.script(Reply.rate_limited(3))  # a proxy's 429: no JSON body
    with pytest.raises(DeliveryError) as caught:
        await plain.send(sample_delivery())
    assert caught.value.retry_after_s == 3.0


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_refusals_permanent(
    discord_api: HttpReceiver, plain: Destination, status: int
) -> None:
    discord_api.script(Reply(status, json={"code": 10015, "message": "Unknown Webhook"}))
    with pytest.raises(DeliveryError) as caught:
        await plain.send(sample_delivery())
    assert caught.value.permanent and "Unknown Webhook" in str(caught.value)
    assert "tok-en" not in str(caught.value)


async def test_timeout_retryable(discord_api: HttpReceiver, plain: Destination) -> None:
    discord_api.script(Reply(204, delay_s=2))
    with pytest.raises(DeliveryError) as caught:
        await plain.send(sample_delivery())
    assert not caught.value.permanent and "timed out" in str(caught.value)
