"""Telegram Bot API sendMessage against a loopback stand-in answering as the Bot API does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from notifier.destinations.base import DeliveryError, Destination
from notifier.destinations.telegram import TelegramConfig
from tests.integration.notifier.dest_common import SUMMARY, sample_delivery
from tests.support import chat_apis
from tests.support.receivers import HttpReceiver, Reply

TOKEN = "123456:AAH-test_token"


@pytest.fixture
def bot_api() -> Iterator[HttpReceiver]:
    with HttpReceiver(responder=chat_apis.telegram_api(TOKEN)) as rx:
        yield rx


async def telegram(
    rx: HttpReceiver, monkeypatch: pytest.MonkeyPatch, **options: object
) -> AsyncIterator[Destination]:
    monkeypatch.setenv("QS_TEST_TELEGRAM_TOKEN", TOKEN)
    config = TelegramConfig.model_validate(
        {
            "name": "desk",
            "bot_token": {"env": "QS_TEST_TELEGRAM_TOKEN"},
            "chat_id": -100123,
            "api_base_url": rx.url,
            "timeout_s": 1,
            **options,
        }
    )
    destination = config.build()
    yield destination
    await destination.aclose()


@pytest.fixture
async def bot(bot_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Destination]:
    async for d in telegram(bot_api, monkeypatch):
        yield d


async def test_send_message(bot_api: HttpReceiver, bot: Destination) -> None:
    await bot.send(sample_delivery())
    [req] = bot_api.requests
    assert (req.method, req.path) == ("POST", f"/bot{TOKEN}/sendMessage")
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {
        "chat_id": "-100123",
        "text": SUMMARY,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }


async def test_html_values_escaped_template_markup_kept(
    bot_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for d in telegram(bot_api, monkeypatch, template="<b>$headline</b>\n$why"):
        await d.send(sample_delivery(reason="RSI <30 & rising"))
    assert bot_api.requests[0].json()["text"] == (
        "<b>BUY BTC-USD at 60,112.40</b>\nRSI &lt;30 &amp; rising"
    )


async def test_markdown_v2_and_plain(
    bot_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for d in telegram(bot_api, monkeypatch, parse_mode="MarkdownV2", chat_id="@qs_desk"):
        await d.send(sample_delivery())
    async for d in telegram(bot_api, monkeypatch, parse_mode=None, disable_notification=True):
        await d.send(sample_delivery())
    markdown, plain = (r.json() for r in bot_api.requests)
    assert markdown["chat_id"] == "@qs_desk" and markdown["parse_mode"] == "MarkdownV2"
    assert markdown["text"] == (
        r"BUY BTC\-USD at 60,112\.40 \(sma\_cross, 1m\): SMA 5 crossed above SMA 20"
    )
    assert "parse_mode" not in plain and plain["text"] == SUMMARY
    assert plain["disable_notification"] is True


async def test_429_parameters_retry_after(bot_api: HttpReceiver, bot: Destination) -> None:
    bot_api.script(Reply.telegram_rate_limited(14))
    with pytest.raises(DeliveryError) as caught:
        await bot.send(sample_delivery())
    assert not caught.value.permanent and caught.value.retry_after_s == 14.0
    assert "Too Many Requests: retry after 14" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (400, "Bad Request: chat not found"),
        (401, "Unauthorized"),
        (403, "Forbidden: bot was blocked by the user"),
    ],
)
async def test_refusals_permanent_without_token(
    bot_api: HttpReceiver, bot: Destination, status: int, description: str
) -> None:
    bot_api.script(Reply.telegram_error(status, description))
    with pytest.raises(DeliveryError) as caught:
        await bot.send(sample_delivery())
    assert caught.value.permanent
    assert str(caught.value) == f"telegram desk: HTTP {status}: {description}"


async def test_bad_gateway_and_ok_false_retryable(bot_api: HttpReceiver, bot: Destination) -> None:
    bot_api.script(Reply(502, b"<html>Bad Gateway</html>"), Reply(200, b"<html>portal</html>"))
    for _ in range(2):
        with pytest.raises(DeliveryError) as caught:
            await bot.send(sample_delivery())
        assert not caught.value.permanent
        assert TOKEN not in str(caught.value)


async def test_timeout_retryable(bot_api: HttpReceiver, bot: Destination) -> None:
    bot_api.script(Reply(200, delay_s=2))
    with pytest.raises(DeliveryError) as caught:
        await bot.send(sample_delivery())
    assert not caught.value.permanent and TOKEN not in str(caught.value)


async def test_stand_in_refuses_what_telegram_refuses(
    bot_api: HttpReceiver, bot: Destination
) -> None:
    # The stand-in checks requests as the Bot API does: the destination's own requests pass
    # (every other test), a wrong token does not.
    bot_api.respond_with(chat_apis.telegram_api("999:other"))
    with pytest.raises(DeliveryError) as caught:
        await bot.send(sample_delivery())
    assert caught.value.permanent and str(caught.value) == "telegram desk: HTTP 401: Unauthorized"
