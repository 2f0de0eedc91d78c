"""The shared HTTP reading: Retry-After in both forms, and which statuses a retry can fix."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.destinations import _http
from notifier.destinations.base import DeliveryError, SecretRef

NOW = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("1.25", 1.25),  # Discord's fractional seconds
        ("0", 0.0),
        ("-3", 0.0),
        ("999999999", _http.MAX_RETRY_AFTER_S),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # RFC 850, which RFC 9110 still accepts
        ("Wed Oct 21 07:28:10 2015", 10.0),  # asctime
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: now
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert _http.retry_after_seconds(value, now=NOW) == seconds


@given(st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    seconds = _http.retry_after_seconds(value, now=NOW)
    assert seconds is None or 0.0 <= seconds <= _http.MAX_RETRY_AFTER_S


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_accepted(status: int) -> None:
    _http.raise_for_answer(answer(status), "x")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_retryable(status: int) -> None:
    with pytest.raises(DeliveryError) as caught:
        _http.raise_for_answer(answer(status, {"Retry-After": "7"}), "hook a")
    assert not caught.value.permanent and caught.value.retry_after_s == 7.0
    assert str(caught.value) == f"hook a: HTTP {status}"


@pytest.mark.parametrize("status", [301, 302, 400, 401, 403, 404, 405, 409, 410, 413, 422])
def test_permanent(status: int) -> None:
    with pytest.raises(DeliveryError) as caught:
        _http.raise_for_answer(answer(status, body=b"  no\n such   hook "), "hook a")
    assert caught.value.permanent
    assert str(caught.value) == f"hook a: HTTP {status}: no such hook"


def test_body_retry_after_wins_and_long_bodies_cut() -> None:
    with pytest.raises(DeliveryError) as caught:
        _http.raise_for_answer(
            answer(429, {"Retry-After": "9"}, b"x" * 1000), "d", retry_after_s=1.5
        )
    assert caught.value.retry_after_s == 1.5
    assert str(caught.value).endswith("x" * _http.ERROR_BODY_CHARS + "…")


@pytest.mark.parametrize(
    ("key", "header"),
    [
        ("BTC-USD:sma_cross:1700000000000", "BTC-USD:sma_cross:1700000000000"),
        ("1700000000123-0", "1700000000123-0"),
        ("a\r\nX-Evil: 1", "a%0D%0AX-Evil%3A%201"),
        ("€uro", "%E2%82%ACuro"),
        (" padded", "%20padded"),
    ],
)
def test_header_safe(key: str, header: str) -> None:
    assert _http.header_safe(key) == header


@given(st.text(min_size=1, max_size=50))
def test_header_safe_always_printable_ascii(key: str) -> None:
    value = _http.header_safe(key)
    assert value and all(" " <= c <= "~" for c in value) and value == value.strip()


@pytest.mark.parametrize("url", ["hooks.slack.com/services/x", "ftp://h/x", "https://", "::"])
def test_reveal_url_refuses(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("QS_TEST_URL", url)
    with pytest.raises(ValueError, match="not an http") as caught:
        _http.reveal_url(SecretRef(env="QS_TEST_URL"))
    assert url not in str(caught.value)


def test_number() -> None:
    assert _http.number(3) == 3.0 and _http.number(1.5) == 1.5
    assert _http.number(True) is None and _http.number("3") is None
    assert _http.number(float("nan")) is None and _http.number(10**400) is None
