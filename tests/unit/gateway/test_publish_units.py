"""The publish API's pure parts: body checks, publisher auth and limits, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.http.errors import Refused
from gateway.http.publish_auth import PublishAuth
from gateway.http.signal_batch import InvalidBody, parse_body
from gateway.settings import GatewaySettings

SECRET = "a-publisher-secret-0123456789"


def settings(**values: object) -> GatewaySettings:
    return GatewaySettings.model_validate({"publish_tokens": f"ci:{SECRET}", **values})


def test_a_body_is_one_signal_or_a_batch_and_gets_ids() -> None:
    one = parse_body(b'{"type":"BUY","price":1}', 10, 65536)
    assert len(one) == 1 and len(one[0]["id"]) == 32
    batch = parse_body(b'[{"type":"BUY","price":1,"id":"x"},{"type":"SELL","price":2}]', 10, 65536)
    assert batch[0]["id"] == "x" and len(batch[1]["id"]) == 32


@pytest.mark.parametrize(
    ("body", "index", "field"),
    [
        (b'[{"type":"BUY","price":1},{"type":"BUY"}]', 1, "price"),
        (b'[{"type":"BUY","price":1,"id":""}]', 0, "id"),
        (b'[{"type":"BUY","price":1,"symbol":7}]', 0, "symbol"),
        (b'[{"type":"BUY","price":1,"offset":"1-0"}]', 0, "offset"),
        (b'[{"type":"BUY","price":1,"x":"' + b"a" * 70_000 + b'"}]', 0, None),
    ],
)
def test_the_first_bad_item_is_named(body: bytes, index: int, field: str | None) -> None:
    with pytest.raises(InvalidBody) as caught:
        parse_body(body, 10, 65536)
    assert caught.value.answer()["index"] == index and caught.value.answer()["field"] == field


def test_rate_limit_is_per_token_with_a_retry_after() -> None:
    now = [0.0]
    auth = PublishAuth(settings(publish_rate_per_s=0.5, publish_burst=2), None, lambda: now[0])
    auth.admit("ci")
    auth.admit("ci")
    with pytest.raises(Refused) as caught:
        auth.admit("ci")
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "2"
    auth.admit("other")  # a bucket of its own
    now[0] = 2.0
    auth.admit("ci")


def test_secrets_match_by_name_and_nothing_else() -> None:
    auth = PublishAuth(settings(), None)
    assert auth.by_secret(SECRET) == "ci" and auth.by_bearer(SECRET) == "ci"
    for wrong in ("", SECRET[:-1], SECRET + "x", "ci"):
        with pytest.raises(Refused) as caught:
            auth.by_bearer(wrong)
        assert caught.value.status == 401
    closed = PublishAuth(GatewaySettings(), None)
    with pytest.raises(Refused) as caught:
        closed.by_secret(SECRET)
    assert caught.value.status == 403 and caught.value.error == "publishing_disabled"


@pytest.mark.parametrize(
    "tokens",
    ["nocolon", ":secret-without-a-name-0123", "ci:short", "ci:changeme", f"a:{SECRET},a:{SECRET}"],
)
def test_bad_publish_tokens_stop_the_start(tokens: str) -> None:
    with pytest.raises(ValidationError) as caught:
        GatewaySettings.model_validate({"publish_tokens": tokens})
    message = caught.value.errors()[0]["msg"]  # what start-up prints (never the input)
    assert "PUBLISH_TOKENS" in message
    assert SECRET not in message and "changeme" not in message


def test_short_publish_secrets_pass_in_development() -> None:
    dev = GatewaySettings.model_validate(
        {"publish_tokens": "ci:short", "environment": "development"}
    )
    assert dev.publishers() == {"ci": "short"}
