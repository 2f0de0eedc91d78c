"""qs_client.webhooks.verify against signatures made by the notifier's own signer."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from qs_client.webhooks import REPLAY_WINDOW_S, SignatureError, verify

from notifier.destinations.webhook import sign

SECRET = b"whsec-0123456789abcdef"
BODY = json.dumps({"type": "BUY", "price": 60000, "symbol": "BTC-USD", "x": [1]}).encode()


def test_a_fresh_signature_from_the_notifier_is_accepted() -> None:
    now = int(time.time())
    assert verify(SECRET, BODY, sign(SECRET, now, BODY)) == now
    assert verify(SECRET.decode(), BODY, sign(SECRET, now, BODY)) == now


@pytest.mark.parametrize(
    ("body", "secret", "age_s"),
    [
        (BODY + b" ", SECRET, 0),  # body changed after signing
        (BODY.replace(b"60000", b"60001"), SECRET, 0),
        (BODY, b"another-secret", 0),  # signed with a key we do not share
        (BODY, SECRET, REPLAY_WINDOW_S + 5),  # replayed after the window
        (BODY, SECRET, -(REPLAY_WINDOW_S + 5)),  # from the far future
    ],
)
def test_tampered_foreign_or_stale_deliveries_are_refused(
    body: bytes, secret: bytes, age_s: int
) -> None:
    stamp = int(time.time()) - age_s
    with pytest.raises(SignatureError):
        verify(SECRET, body, sign(secret, stamp, BODY))


def test_one_matching_v1_among_several_is_enough_for_secret_rotation() -> None:
    now = int(time.time())
    old = sign(b"old-secret", now, BODY).split(",")[1]
    header = f"{sign(SECRET, now, BODY)},{old}"
    assert verify(SECRET, BODY, header) == now


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=,v1=abc", "t=1,t=2,v1=a", "t=x,v1=a"])
def test_malformed_headers_are_refused_with_a_reason(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify(SECRET, BODY, header)


@given(st.text(max_size=200), st.binary(max_size=200))
def test_any_header_and_body_is_accepted_or_refused_never_crashes(header: str, body: bytes) -> None:
    try:
        verify(SECRET, body, header)
    except SignatureError:
        return
    pytest.fail("a random header verified")  # pragma: no cover - would be a forgery
