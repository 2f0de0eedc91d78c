"""Generic webhook: the signal as JSON, signed the way Stripe signs its events.

``POST <url>`` with the signal object unchanged as the body and::

    Content-Type: application/json
    Idempotency-Key: <key>            same on every attempt and replica: drop repeats by it
    X-QS-Timestamp: <unix seconds>
    X-QS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
    X-QS-Attempt: <n>                 1 on the first try

The timestamp is inside the signed bytes, so a receiver that rejects timestamps outside a
replay window (5 minutes; docs/notifier.md has the verification snippet) cannot be fed an
old delivery again. Each attempt is signed afresh, with its own timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal

import httpx
import orjson
from pydantic import AnyHttpUrl, field_validator

from notifier.destinations import _http
from notifier.destinations.base import Delivery, Destination, DestinationConfig, SecretRef

SIGNATURE_HEADER = "X-QS-Signature"
TIMESTAMP_HEADER = "X-QS-Timestamp"
ATTEMPT_HEADER = "X-QS-Attempt"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-QS-Signature`` value for this body at this time."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookConfig(DestinationConfig):
    type: Literal["webhook"] = "webhook"
    url: AnyHttpUrl
    #: The HMAC key; receivers hold the same value.
    secret: SecretRef

    @field_validator("template")
    @classmethod
    def _no_template(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("a webhook sends the signal's JSON unchanged; it takes no template")
        return value

    def build(self) -> Destination:
        return WebhookDestination(self)


class WebhookDestination:
    def __init__(
        self,
        config: WebhookConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config: DestinationConfig = config
        self._url = str(config.url)
        self._secret = config.secret.reveal().encode()
        self._client = client or _http.make_client(config.timeout_s)
        self._clock = clock

    def request(self, delivery: Delivery) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt."""
        body = orjson.dumps(dict(delivery.signal))
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": _http.header_safe(delivery.idempotency_key),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            ATTEMPT_HEADER: str(delivery.attempt),
        }
        return body, headers

    async def send(self, delivery: Delivery) -> None:
        body, headers = self.request(delivery)
        what = f"webhook {self.config.name}"
        response = await _http.post(self._client, self._url, what, content=body, headers=headers)
        _http.raise_for_answer(response, what)

    async def aclose(self) -> None:
        await self._client.aclose()
