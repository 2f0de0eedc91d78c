"""What the HTTP destinations share: one client per destination, and one reading of an answer.

A response maps to the delivery loop's vocabulary (``DeliveryError``):

- 2xx: accepted;
- 408, 429, 5xx, timeouts and connection errors: retryable, with ``Retry-After`` (seconds
  or an HTTP date) passed on as ``retry_after_s``;
- anything else (other 4xx, and 3xx: redirects are not followed, a moved hook is a wrong
  URL): permanent.

Error messages never contain the URL: a Telegram URL holds the bot token, and a Slack or
Discord webhook URL is itself the secret.
"""

from __future__ import annotations

import email.utils
import math
import time
import zlib
from collections.abc import Mapping
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from notifier.destinations.base import DeliveryError, SecretRef

#: A receiver asking for a longer pause than this is heard as asking for this long, so a
#: typo on its side cannot park a destination for days.
MAX_RETRY_AFTER_S = 3600.0
#: Connecting should never take long on a healthy path; the rest of ``timeout_s`` is left
#: for the receiver to answer.
CONNECT_TIMEOUT_S = 5.0
#: How much of a refusal's body goes into the error (dead letters, logs).
ERROR_BODY_CHARS = 200
#: Most of an answer's body read: the chat APIs answer in a few hundred bytes, and a
#: receiver sending gigabytes must not fill the notifier's memory. The rest is not read
#: (the connection is closed, not reused).
MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "quantum-signals-notifier"


def make_client(timeout_s: float) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with explicit timeouts, no redirects and no proxy from env."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S)),
        follow_redirects=False,
        # A destination talks to one host at a time, serially: a few connections suffice.
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        # Bodies are only read for an error's excerpt or a chat API's small JSON answer.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        trust_env=False,
    )


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds ("120", Discord's "1.5") or an HTTP date.

    None when absent or unreadable; clamped to ``[0, MAX_RETRY_AFTER_S]``.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "-0000"
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def raise_for_answer(
    response: httpx.Response,
    what: str,
    *,
    retry_after_s: float | None = None,
    detail: str | None = None,
) -> None:
    """Return on 2xx, else raise the ``DeliveryError`` the status means.

    ``retry_after_s`` overrides the header, for receivers that say it in the body
    (Discord's and Telegram's ``retry_after``); ``detail`` replaces the body's excerpt in
    the message (Telegram's ``description``).
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    if retry_after_s is None:
        retry_after_s = retry_after_seconds(response.headers.get("Retry-After"))
    why = f": {detail}" if detail else _body_excerpt(response)
    message = f"{what}: HTTP {status}{why}"
    if status in (408, 429) or status >= 500:
        raise DeliveryError(message, retry_after_s=retry_after_s)
    raise DeliveryError(message, permanent=True)


async def post(
    client: httpx.AsyncClient,
    url: str,
    what: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST and return the response whatever its status; transport failures become
    retryable ``DeliveryError``s (a timeout may still have delivered: the idempotency key
    lets the receiver drop the repeat)."""
    if json is not None:
        content = orjson.dumps(json)
        headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        async with client.stream("POST", url, content=content, headers=headers) as response:
            body = await _read_capped(response, MAX_BODY_BYTES)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{what}: timed out ({type(exc).__name__})") from None
    except httpx.RequestError as exc:
        # str(exc) is the OS error ("[Errno 111] Connection refused") or a body that does
        # not decode, never the URL.
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}") from None
    # The body is decoded already: the copy must not claim an encoding.
    kept = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=kept, content=body, request=response.request
    )


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, decoded. Read raw and inflated here with a
    bound: httpx inflates a whole chunk at once, and 64 KB of gzip can be 64 MB."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    raw = b"".join(chunks)[:limit]
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            # wbits 47: a zlib or gzip header, detected.
            return zlib.decompressobj(47).decompress(raw, limit)
        except zlib.error:
            return b""  # unreadable: the status still says what happened
    return raw if encoding in ("", "identity") else b""


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when it is not one (a proxy's HTML error page)."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def number(value: object) -> float | None:
    """A finite JSON number as float (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            return None
        return number if math.isfinite(number) else None
    return None


def _body_excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    if not text:
        return ""
    if len(text) > ERROR_BODY_CHARS:
        text = text[:ERROR_BODY_CHARS] + "…"
    return f": {text}"


def reveal_url(secret: SecretRef) -> str:
    """A URL kept as a secret (a Slack or Discord hook's URL is its credential), checked to
    be http(s); the error never repeats it."""
    url = secret.reveal()
    _check_url(url)
    return url


def url_secret(secret: SecretRef) -> SecretRef:
    """Field validator: a secret that resolves must be an http(s) URL, so a wrong one stops
    the start-up with its key path; one that does not resolve is left for the loader to
    report (notifier.config)."""
    try:
        url = secret.reveal()
    except ValueError:
        return secret
    _check_url(url)
    return secret


def _check_url(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError("the secret is not an http(s) URL")


def header_safe(key: str) -> str:
    """The key as a header value: unchanged when printable ASCII (every id the monitor
    makes), else percent-encoded (UTF-8), which is as stable across attempts."""
    if key and all(" " <= c <= "~" for c in key) and key == key.strip():
        return key
    return quote(key, safe="")
