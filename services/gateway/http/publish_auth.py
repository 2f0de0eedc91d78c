"""Who may publish over HTTP, and how often: publisher tokens, publisher JWTs, rate limits.

Separate from the admin token and from client tokens: a PUBLISH_TOKENS secret opens only
POST /api/signals. Secrets are compared through their SHA-256 digests with
``hmac.compare_digest``, against every configured token without stopping at a match, so
neither the position nor the length of a matching prefix shows in the timing.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable

from gateway.clients.auth import AuthError, TokenVerifier
from gateway.edge.limits import TokenBucket
from gateway.http.errors import Refused, unauthorized
from gateway.settings import GatewaySettings

NO_TOKEN = "invalid or missing publisher token"
#: Rate-limit buckets kept before full (idle) ones are dropped: JWT subjects are unbounded.
BUCKETS_MAX = 10_000


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class PublishAuth:
    def __init__(
        self,
        settings: GatewaySettings,
        verifier: TokenVerifier | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = [(name, _digest(s)) for name, s in settings.publishers().items()]
        self._role = settings.publish_jwt_role
        self._verifier = verifier if self._role else None
        self._rate = settings.publish_rate_per_s
        self._burst = settings.publish_burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._tokens) or self._verifier is not None

    def by_secret(self, given: str) -> str:
        """The name of the token whose secret is ``given`` (the webhook path form)."""
        self._require_enabled()
        name = self._match(given)
        if name is None:
            raise unauthorized(NO_TOKEN)
        return name

    def by_bearer(self, given: str | None) -> str:
        """The caller behind an ``Authorization: Bearer`` value: a token name or ``jwt:<sub>``."""
        self._require_enabled()
        if not given:
            raise unauthorized(NO_TOKEN)
        name = self._match(given)
        if name is not None:
            return name
        if self._verifier is None or given.count(".") != 2:
            raise unauthorized(NO_TOKEN)
        try:
            claims = self._verifier.verify(given)
        except AuthError as exc:
            raise unauthorized(exc.reason.value) from None
        roles = claims.raw.get("roles")
        listed = roles if isinstance(roles, list) else []
        if claims.raw.get("role") != self._role and self._role not in listed:
            raise Refused(403, "forbidden", f"the token lacks the '{self._role}' role")
        return f"jwt:{claims.subject or '-'}"

    def admit(self, name: str) -> None:
        """Take one request from ``name``'s bucket, or refuse with 429 and Retry-After."""
        now = self._clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= BUCKETS_MAX:
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}
            bucket = self._buckets[name] = TokenBucket(self._rate, self._burst, now)
        if not bucket.take(now):
            wait_s = max(1, math.ceil((1 - bucket.tokens) / self._rate))
            raise Refused(
                429, "rate_limited", "too many publish requests", {"Retry-After": str(wait_s)}
            )

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise Refused(403, "publishing_disabled", "publishing disabled: PUBLISH_TOKENS unset")

    def _match(self, given: str) -> str | None:
        digest = _digest(given)
        found = None
        for name, expected in self._tokens:  # no early exit: every token costs the same
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found
