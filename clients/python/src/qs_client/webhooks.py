"""Receiving the notifier's webhooks: check the signature, then read the signal.

The notifier signs each delivery the way Stripe signs its events (docs/notifier.md)::

    X-QS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

``verify`` accepts a delivery only when one ``v1`` matches and ``t`` is within the replay
window, so a captured delivery cannot be sent again later. ``listen`` is a small receiver
for trying a notifier out (``qs webhook-listen``); a real receiver does the same check in
its own web framework.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qs_client.models import Signal

SIGNATURE_HEADER = "X-QS-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-QS-Attempt"
#: Deliveries signed longer ago (or further ahead, for skewed clocks) than this are refused.
REPLAY_WINDOW_S = 300
#: Bodies above this are refused unread (the gateways refuse signals above 64 KiB).
MAX_BODY_BYTES = 1 << 20


class SignatureError(ValueError):
    """The delivery is not from a notifier holding the secret, or is too old."""


def verify(
    secret: str | bytes,
    body: bytes,
    signature: str | None,
    *,
    tolerance_s: float = REPLAY_WINDOW_S,
    now: float | None = None,
) -> int:
    """The delivery's timestamp if ``signature`` signs ``body`` recently; else SignatureError."""
    if not signature:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    parts = [p.partition("=") for p in signature.split(",")]
    stamps = [v for k, _, v in parts if k.strip() == "t"]
    macs = [v.strip() for k, _, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not macs:
        raise SignatureError("malformed signature header")
    timestamp = int(stamps[0])
    key = secret.encode() if isinstance(secret, str) else secret
    expected = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        raise SignatureError("signature does not match")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        raise SignatureError(f"signed {age:.0f} s ago, outside the {tolerance_s:.0f} s window")
    return timestamp


@dataclass(frozen=True)
class Received:
    """One verified delivery."""

    signal: Signal
    idempotency_key: str
    attempt: int
    duplicate: bool


def listen(
    host: str,
    port: int,
    secret: str,
    on_delivery: Callable[[Received], None],
    on_refused: Callable[[str], None],
) -> ThreadingHTTPServer:
    """A receiver on ``host:port`` (call ``serve_forever()``): 204 for a verified delivery,
    401 for a bad signature, 400 for a body that is not a signal. Repeats of an idempotency
    key are answered 204 again and reported with ``duplicate=True``."""
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status, message = _receive(self, secret, seen, on_delivery)
            if message:
                on_refused(message)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the callbacks say what happened."""

    return ThreadingHTTPServer((host, port), Handler)


def _receive(
    request: BaseHTTPRequestHandler,
    secret: str,
    seen: set[str],
    on_delivery: Callable[[Received], None],
) -> tuple[int, str]:
    length = int(request.headers.get("Content-Length") or 0)
    if not 0 < length <= MAX_BODY_BYTES:
        return 400, f"refused: body of {length} bytes"
    body = request.rfile.read(length)
    try:
        verify(secret, body, request.headers.get(SIGNATURE_HEADER))
        signal = Signal.from_dict(json.loads(body))
    except SignatureError as exc:
        return 401, f"refused: {exc}"
    except (ValueError, TypeError) as exc:
        return 400, f"refused: not a signal ({exc})"
    key = request.headers.get(IDEMPOTENCY_HEADER) or ""
    attempt = request.headers.get(ATTEMPT_HEADER) or "1"
    on_delivery(
        Received(signal, key, int(attempt) if attempt.isdigit() else 1, duplicate=key in seen)
    )
    seen.add(key)
    return 204, ""
