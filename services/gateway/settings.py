"""Gateway settings (environment variables; ``python -m gateway --help`` lists them)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import NoDecode

from common.settings import ServiceSettings
from gateway.clients.auth import AuthSettings

Transport = Literal["websocket", "polling"]

# Values people paste from examples; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "admin", "password"})


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class GatewaySettings(ServiceSettings, AuthSettings):
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
        default=500, ge=1, description="Largest 'limit' accepted by /api/signals/latest."
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
        if not self.transports:
            raise ValueError("TRANSPORTS must name at least one of: websocket, polling")
        token = self.admin_token.get_secret_value() if self.admin_token else None
        weak = token is not None and (token.lower() in PLACEHOLDER_SECRETS or len(token) < 16)
        if weak and self.environment != "development":
            raise ValueError(
                "ADMIN_TOKEN is a placeholder or shorter than 16 characters; set a real "
                "secret (or ENVIRONMENT=development for local use)"
            )
        return self
