"""HTTP hardening of the FastAPI app: CORS for the read-only API, and security headers.

CORS uses the same ``CORS_ALLOWED_ORIGINS`` as Socket.IO. Only GET is allowed
cross-origin: a page on another origin may read ``/api/signals/latest``, but the admin
broadcast (a POST with an ``Authorization`` header) needs a preflight that is refused, so
it cannot be driven from a browser on a foreign site. The gateway's own page is same-origin
and needs no CORS at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import GatewaySettings

# Set on every response unless the route set its own (the page keeps its full CSP).
BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)


def security_headers(hsts_max_age_s: int) -> tuple[tuple[bytes, bytes], ...]:
    if hsts_max_age_s <= 0:  # HSTS only where TLS is certain; a mistake pins browsers to https
        return BASE_HEADERS
    return (*BASE_HEADERS, (b"strict-transport-security", f"max-age={hsts_max_age_s}".encode()))


class SecurityHeaders:
    """Pure ASGI middleware (no body buffering, so streaming responses stay streaming)."""

    def __init__(self, app: ASGIApp, headers: tuple[tuple[bytes, bytes], ...]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class AllowedOrigins:
    """Socket.IO origin check: the listed origins plus the gateway's own.

    Given a list, python-engineio admits only that list, so listing a partner site would
    lock out the gateway's own page (served from ``/``) unless its origin were listed too.
    """

    def __init__(self, origins: list[str]) -> None:
        self.origins = frozenset(origins)

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        return origin is not None and (origin in self.origins or origin in own_origins(environ))


def own_origins(environ: dict[str, Any]) -> set[str]:
    """The origin the request was sent to, directly and as forwarded by the ingress."""
    host = environ.get("HTTP_HOST")
    if not host:
        return set()
    scheme = environ.get("wsgi.url_scheme", "http")
    proto = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
    fwd_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
    return {f"{scheme}://{host}", f"{proto}://{fwd_host}"}


def add_http_security(api: FastAPI, settings: GatewaySettings) -> None:
    """Install CORS (when origins are configured) and the security headers on ``api``."""
    origins = settings.cors_allowed_origins
    if origins:
        cors: dict[str, Any] = {"allow_origins": ["*"] if "*" in origins else origins}
        api.add_middleware(CORSMiddleware, allow_methods=["GET"], **cors)
    # Added last, so it wraps CORS too and its preflight answers get the headers.
    api.add_middleware(SecurityHeaders, headers=security_headers(settings.hsts_max_age_s))
