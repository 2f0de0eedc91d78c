"""Slack incoming webhook against a loopback stand-in that answers as Slack documents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from notifier.destinations.base import DeliveryError, Destination
from notifier.destinations.slack import SlackConfig
from tests.integration.notifier.dest_common import SUMMARY, sample_delivery
from tests.support import chat_apis
from tests.support.receivers import HttpReceiver, Reply


@pytest.fixture
def slack_api() -> Iterator[HttpReceiver]:
    with HttpReceiver(responder=chat_apis.slack_api) as rx:
        yield rx


async def slack(
    rx: HttpReceiver, monkeypatch: pytest.MonkeyPatch, **options: object
) -> AsyncIterator[Destination]:
    monkeypatch.setenv("QS_TEST_SLACK_URL", f"{rx.url}/services/T000/B000/XXXX")
    config = SlackConfig.model_validate(
        {"name": "desk", "webhook_url": {"env": "QS_TEST_SLACK_URL"}, "timeout_s": 1, **options}
    )
    destination = config.build()
    yield destination
    await destination.aclose()


@pytest.fixture
async def plain(
    slack_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Destination]:
    async for d in slack(slack_api, monkeypatch):
        yield d


async def test_text(slack_api: HttpReceiver, plain: Destination) -> None:
    await plain.send(sample_delivery())
    [req] = slack_api.requests
    assert (req.method, req.path) == ("POST", "/services/T000/B000/XXXX")
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {"text": SUMMARY}


async def test_blocks_and_escaping(
    slack_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for destination in slack(
        slack_api, monkeypatch, blocks=True, template="*$headline* $reason"
    ):
        await destination.send(sample_delivery(reason="<!channel> & <http://x|click>"))
    body = slack_api.requests[0].json()
    text = "*BUY BTC-USD at 60,112.40* &lt;!channel&gt; &amp; &lt;http://x|click&gt;"
    assert body["text"] == text
    section, context = body["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == (
        "sma_cross, 1m · 2023-11-14 22:13:20 UTC · BTC-USD:sma_cross:1700000000000"
    )


async def test_rate_limited(slack_api: HttpReceiver, plain: Destination) -> None:
    slack_api.script(Reply.rate_limited(30))
    with pytest.raises(DeliveryError) as caught:
        await plain.send(sample_delivery())
    assert not caught.value.permanent and caught.value.retry_after_s == 30.0


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ],
)
async def test_refusals_permanent(
    slack_api: HttpReceiver, plain: Destination, status: int, reason: str
) -> None:
    slack_api.script(Reply(status, reason.encode()))
    with pytest.raises(DeliveryError) as caught:
        await plain.send(sample_delivery())
    assert caught.value.permanent
    assert reason in str(caught.value)
    assert "XXXX" not in str(caught.value)  # the hook URL is the secret


async def test_server_error_retryable(slack_api: HttpReceiver, plain: Destination) -> None:
    slack_api.script(Reply(500, b"rollup_error"))
    with pytest.raises(DeliveryError) as caught:
        await plain.send(sample_delivery())
    assert not caught.value.permanent
