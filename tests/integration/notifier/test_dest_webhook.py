"""The webhook destination against a real loopback HTTP server: what arrives, and what each
answer means to the delivery loop."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from common.schema import make_signal
from notifier.destinations import CONFIG_TYPES
from notifier.destinations.base import Delivery, DeliveryError, Destination
from notifier.destinations.webhook import WebhookConfig
from tests.support.receivers import HttpReceiver, Reply

SECRET = "whsec-test-0123456789"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as rx:
        yield rx


@pytest.fixture
async def webhook(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Destination]:
    monkeypatch.setenv("QS_TEST_WEBHOOK_SECRET", SECRET)
    config = WebhookConfig(
        name="ops",
        url=f"{receiver.url}/hooks/qs",
        secret={"env": "QS_TEST_WEBHOOK_SECRET"},
        timeout_s=1.0,
    )
    destination = config.build()
    yield destination
    await destination.aclose()


def delivery(attempt: int = 1) -> Delivery:
    signal = make_signal(
        signal_id="BTC-USD:sma_cross:1700000000000",
        signal_type="BUY",
        price=60112.4,
        symbol="BTC-USD",
        strategy="sma_cross",
        ts=1700000000.0,
        timeframe="1m",
        reason="SMA 5 crossed above SMA 20 at 60,112.40",
        offset="k3x9q2ab:1700000000123-0",
    )
    return Delivery(signal, signal["id"], "1700000000123-0", attempt)


def test_registered() -> None:
    assert WebhookConfig in CONFIG_TYPES


async def test_wire_format(receiver: HttpReceiver, webhook: Destination) -> None:
    sent = delivery(attempt=3)
    await webhook.send(sent)

    [req] = receiver.requests
    assert (req.method, req.path) == ("POST", "/hooks/qs")
    assert req.headers["content-type"] == "application/json"
    assert req.headers["idempotency-key"] == "BTC-USD:sma_cross:1700000000000"
    assert req.headers["x-qs-attempt"] == "3"
    assert req.json() == dict(sent.signal)  # the signal unchanged, offset included
    timestamp = req.headers["x-qs-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + req.body, hashlib.sha256)
    assert req.headers["x-qs-signature"] == f"t={timestamp},v1={expected.hexdigest()}"
    assert abs(int(timestamp) - req.received_at) < 5


async def test_each_attempt_same_key_fresh_signature(
    receiver: HttpReceiver, webhook: Destination
) -> None:
    await webhook.send(delivery(1))
    await webhook.send(delivery(2))
    first, second = receiver.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert orjson.loads(first.body) == orjson.loads(second.body)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_accepted(receiver: HttpReceiver, webhook: Destination, status: int) -> None:
    receiver.default = Reply(status)
    await webhook.send(delivery())


async def test_429_retry_after_seconds(receiver: HttpReceiver, webhook: Destination) -> None:
    receiver.script(Reply.rate_limited(7))
    with pytest.raises(DeliveryError) as caught:
        await webhook.send(delivery())
    assert not caught.value.permanent
    assert caught.value.retry_after_s == 7.0


async def test_503_retry_after_http_date(receiver: HttpReceiver, webhook: Destination) -> None:
    receiver.script(Reply(503, b"maintenance", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    with pytest.raises(DeliveryError) as caught:
        await webhook.send(delivery())
    assert not caught.value.permanent
    assert caught.value.retry_after_s == 0.0  # a date in the past: retry now
    assert "HTTP 503: maintenance" in str(caught.value)


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
async def test_retryable_statuses(
    receiver: HttpReceiver, webhook: Destination, status: int
) -> None:
    receiver.script(Reply(status))
    with pytest.raises(DeliveryError) as caught:
        await webhook.send(delivery())
    assert not caught.value.permanent
    assert caught.value.retry_after_s is None


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 410, 413, 422])
async def test_permanent_statuses(
    receiver: HttpReceiver, webhook: Destination, status: int
) -> None:
    receiver.script(Reply(status, b"no such hook"))
    with pytest.raises(DeliveryError) as caught:
        await webhook.send(delivery())
    assert caught.value.permanent
    assert receiver.url not in str(caught.value)


async def test_timeout_retryable(receiver: HttpReceiver, webhook: Destination) -> None:
    receiver.script(Reply(200, delay_s=2.0))  # the destination waits 1 s
    with pytest.raises(DeliveryError) as caught:
        await webhook.send(delivery())
    assert not caught.value.permanent
    assert "timed out" in str(caught.value)
    receiver.default = Reply(200)
    await webhook.send(delivery(2))  # the client is usable again


async def test_connection_refused_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QS_TEST_WEBHOOK_SECRET", SECRET)
    with HttpReceiver() as rx:
        url = rx.url
    config = WebhookConfig(
        name="gone",
        url=url,
        secret={"env": "QS_TEST_WEBHOOK_SECRET"},
    )
    destination = config.build()
    try:
        with pytest.raises(DeliveryError) as caught:
            await destination.send(delivery())
        assert not caught.value.permanent
        assert "ConnectError" in str(caught.value)
    finally:
        await destination.aclose()
