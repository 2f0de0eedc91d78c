"""The verification snippet in docs/notifier.md, run as written against real deliveries."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from notifier.destinations.webhook import WebhookConfig, WebhookDestination
from tests.integration.notifier.dest_common import sample_delivery
from tests.support.receivers import HttpReceiver, Recorded
from tests.support.services import ROOT

SECRET = "whsec-doc-test"
Verify = Callable[..., bool]


def doc_snippet() -> str:
    text = (ROOT / "docs" / "notifier.md").read_text()
    section = text.split("## Verifying webhook signatures", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block in the 'Verifying webhook signatures' section"
    return match.group(1)


@pytest.fixture(scope="module")
def verify() -> Verify:
    namespace: dict[str, Any] = {}
    exec(compile(doc_snippet(), "docs/notifier.md", "exec"), namespace)
    function: Verify = namespace["verify"]
    return function


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as rx:
        yield rx


async def deliver(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, clock: Callable[[], float]
) -> Recorded:
    monkeypatch.setenv("QS_TEST_DOC_SECRET", SECRET)
    config = WebhookConfig.model_validate(
        {"name": "doc", "url": receiver.url, "secret": {"env": "QS_TEST_DOC_SECRET"}}
    )
    destination = WebhookDestination(config, clock=clock)
    try:
        await destination.send(sample_delivery())
    finally:
        await destination.aclose()
    return receiver.requests[-1]


async def test_accepts_a_real_delivery(
    verify: Verify, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = await deliver(receiver, monkeypatch, time.time)
    assert verify(SECRET.encode(), req.body, req.headers["x-qs-signature"])


async def test_rejects_tampered_body_wrong_secret_and_garbage(
    verify: Verify, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = await deliver(receiver, monkeypatch, time.time)
    signature = req.headers["x-qs-signature"]
    tampered = req.body.replace(b'"BUY"', b'"SELL"')
    assert tampered != req.body
    assert not verify(SECRET.encode(), tampered, signature)
    assert not verify(SECRET.encode(), req.body + b" ", signature)
    assert not verify(b"another-secret", req.body, signature)
    timestamp = req.headers["x-qs-timestamp"]
    for bad in ["", "t=", f"t={timestamp}", "v1=00", f"t={timestamp},v1=ü", "garbage"]:
        assert not verify(SECRET.encode(), req.body, bad)


@pytest.mark.parametrize("skew_s", [-400, 400])
async def test_rejects_stale_or_future_timestamp(
    verify: Verify, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, skew_s: int
) -> None:
    # Signed correctly, but 400 s off the receiver's clock: outside the 5-minute window.
    req = await deliver(receiver, monkeypatch, lambda: time.time() + skew_s)
    assert not verify(SECRET.encode(), req.body, req.headers["x-qs-signature"])
    signed_at = int(req.headers["x-qs-timestamp"])
    assert verify(SECRET.encode(), req.body, req.headers["x-qs-signature"], now=signed_at + 299)
    assert not verify(SECRET.encode(), req.body, req.headers["x-qs-signature"], now=signed_at + 301)
