"""Gateway settings (environment variables; ``python -m gateway --help`` lists them)."""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import NoDecode

from common.settings import HistorySettings, ServiceSettings
from gateway.clients.auth import AuthSettings

Transport = Literal["websocket", "polling"]
ApiDocs = Literal["on", "off"]

# Values people paste from examples; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "admin", "password"})


#: Shortest ADMIN_TOKEN or publish secret accepted outside development.
MIN_SECRET_CHARS = 16


def _weak(secret: str) -> bool:
    return secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_CHARS


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class GatewaySettings(ServiceSettings, HistorySettings, AuthSettings):
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed to connect; empty means same origin only; "
        "'*' allows any.",
    )
    transports: Annotated[list[Transport], NoDecode] = Field(
        default_factory=lambda: list[Transport](["polling", "websocket"]),
        description="Comma-separated Socket.IO transports. Use 'websocket' alone with several "
        "replicas and no sticky sessions.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for POST /api/broadcast; unset disables the endpoint.",
    )
    latest_limit_max: int = Field(
        default=500,
        ge=1,
        description="Largest 'limit' accepted by GET /api/signals and /api/signals/latest.",
    )
    history_scan_max: int = Field(
        default=5000,
        ge=1,
        description="History entries GET /api/signals reads per request at most while "
        "filtering; a page cut short by this bound carries a next_cursor to go on from.",
    )
    publish_tokens: SecretStr | None = Field(
        default=None,
        description="Comma-separated name:secret pairs allowed to POST /api/signals "
        "(Bearer <secret>, or /api/signals/hook/<secret> for webhooks); the name labels "
        "logs and rate limits. Secrets of at least 16 characters. Unset (and no "
        "PUBLISH_JWT_ROLE JWTs) disables publishing over HTTP. docs/api.md",
    )
    publish_jwt_role: str = Field(
        default="publisher",
        description="Role a JWT (verified with the JWT_* settings) must carry in 'role' or "
        "'roles' to publish; empty: JWTs cannot publish.",
    )
    publish_rate_per_s: float = Field(
        default=20.0, gt=0, description="Publish requests per second per token, sustained."
    )
    publish_burst: int = Field(
        default=40, ge=1, description="Publish requests per token at once (bucket size)."
    )
    publish_batch_max: int = Field(
        default=100, ge=1, le=1000, description="Most signals in one POST /api/signals batch."
    )
    drain_delay_s: float = Field(
        default=0.0,
        ge=0,
        description="Pause between failing readiness and closing clients on shutdown, so load "
        "balancers stop routing here first (in Kubernetes the preStop sleep does this).",
    )
    drain_batch_size: int = Field(
        default=200, ge=1, description="Clients disconnected per batch on shutdown."
    )
    drain_batch_interval_s: float = Field(
        default=0.05, ge=0, description="Pause between drain batches (jittered), seconds."
    )
    client_queue_max: int = Field(
        default=500,
        ge=1,
        description="Messages queued for one client before it counts as not reading and is "
        "disconnected (bounds memory per slow client).",
    )
    overload_age_ms: int = Field(
        default=50,
        ge=1,
        description="A signal older than this (since its history offset's time) when its "
        "fan-out starts puts the replica in overload: it then coalesces the signals waiting in "
        "Redis into one write per client, and clients that asked for latest_only get only "
        "the newest of each symbol and strategy among them. docs/delivery.md",
    )
    overload_batch_max: int = Field(
        default=256,
        ge=2,
        description="Most signals read from Redis and coalesced into one fan-out in overload.",
    )
    ping_interval_s: float = Field(default=25.0, gt=0, description="Engine.IO ping interval.")
    ping_timeout_s: float = Field(default=20.0, gt=0, description="Engine.IO ping timeout.")
    max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Engine.IO sessions this replica accepts; beyond it a handshake gets HTTP "
        "503 'server_full' (clients retry, possibly on another replica). docs/security.md",
    )
    max_client_packet_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest packet a client may send (WebSocket message or long-polling POST); "
        "larger ones are refused. Clients send only subscribe/auth payloads (200 symbols of 64 "
        "characters plus a token fit).",
    )
    client_events_per_s: float = Field(
        default=5.0, gt=0, le=1000, description="Events one client may send per second, sustained."
    )
    client_events_burst: int = Field(
        default=20, ge=1, le=10_000, description="Events one client may send at once (bucket size)."
    )
    client_flood_disconnect_after: int = Field(
        default=50,
        ge=1,
        description="Rate-limited events, with no pause long enough to refill the burst, after "
        "which a client is disconnected as a flooder.",
    )
    hsts_max_age_s: int = Field(
        default=0,
        ge=0,
        description="Strict-Transport-Security max-age on HTTP responses; 0 sends none. Set it "
        "only when every client reaches the gateway over HTTPS.",
    )
    sse_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between ': ping' comments on an idle GET /api/signals/stream, so "
        "proxies and load balancers keep the stream open.",
    )
    sse_client_queue_max: int = Field(
        default=500,
        ge=1,
        description="Events queued for one SSE client before it counts as not reading and its "
        "stream is ended (it may resume with Last-Event-ID).",
    )

    page_token_url: str | None = Field(
        default=None,
        description="With AUTH_REQUIRED: a URL the live page GETs (with the browser's "
        'credentials) to obtain a token, answering {"token": "<JWT>"}: an identity '
        "provider's endpoint, or a path on the page's own origin. Unset: the page asks for a "
        "pasted token. An absolute URL's origin is added to the page's CSP connect-src.",
    )

    api_docs: ApiDocs | None = Field(
        default=None,
        description="'on' or 'off': serve the API descriptions /docs, /redoc, /openapi.json and "
        "/asyncapi.json (docs/api.md). Unset: on with ENVIRONMENT=development, off otherwise.",
    )

    @property
    def docs_enabled(self) -> bool:
        """API_DOCS, or by default only in development: a description of every endpoint
        is a map for an attacker, and the same documents are in docs/ anyway."""
        if self.api_docs is None:
            return self.environment == "development"
        return self.api_docs == "on"

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("cors_allowed_origins", "transports"):
                if key in data:
                    data[key] = _split_csv(data[key])
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.page_token_url is not None:
            # Only a web URL or a path: never javascript:, data: or another scheme.
            url = urlsplit(self.page_token_url)
            if url.scheme not in ("", "http", "https") or bool(url.scheme) != bool(url.netloc):
                raise ValueError("PAGE_TOKEN_URL must be an http(s) URL or a path")
        if not self.transports:
            raise ValueError("TRANSPORTS must name at least one of: websocket, polling")
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if token is not None and _weak(token) and self.environment != "development":
            raise ValueError(
                "ADMIN_TOKEN is a placeholder or shorter than 16 characters; set a real "
                "secret (or ENVIRONMENT=development for local use)"
            )
        self.publishers()  # refuse a malformed PUBLISH_TOKENS at start-up, not per request
        return self

    def publishers(self) -> dict[str, str]:
        """PUBLISH_TOKENS as {name: secret}; raises ValueError naming what is wrong."""
        if self.publish_tokens is None:
            return {}
        found: dict[str, str] = {}
        pairs = [p.strip() for p in self.publish_tokens.get_secret_value().split(",")]
        for pair in filter(None, pairs):
            name, sep, secret = pair.partition(":")
            name = name.strip()
            # Never echo the pair: it holds the secret.
            if not sep or not name or not secret:
                raise ValueError("PUBLISH_TOKENS: each entry must be name:secret")
            if name in found:
                raise ValueError(f"PUBLISH_TOKENS: name {name!r} appears twice")
            if _weak(secret) and self.environment != "development":
                raise ValueError(
                    f"PUBLISH_TOKENS: the secret of {name!r} is a placeholder or shorter than "
                    f"{MIN_SECRET_CHARS} characters (or ENVIRONMENT=development)"
                )
            found[name] = secret
        return found
