"""Settings shared by both services, and the start-up helpers that load them.

Every setting comes from an environment variable named after the field in upper case
(``redis_url`` -> ``REDIS_URL``). Nothing is created at import time: ``load_settings``
builds the object once in ``__main__`` and passes it down, so tests build their own.
"""

from __future__ import annotations

import sys
from typing import Literal, NoReturn, TypeVar

from pydantic import Field, RedisDsn, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.constants import DEFAULT_CHANNEL, DEFAULT_MAX_MESSAGE_BYTES

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "json", "console"]
Environment = Literal["development", "production"]

S = TypeVar("S", bound="ServiceSettings")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", validate_default=True, frozen=True)

    redis_url: RedisDsn = Field(
        default=RedisDsn("redis://localhost:6379/0"),
        description="Redis URL (redis://, rediss:// for TLS, user:password@ for ACL auth).",
    )
    signal_channel: str = Field(
        default=DEFAULT_CHANNEL, min_length=1, description="Pub/Sub channel carrying signals."
    )
    host: str = Field(default="0.0.0.0", description="Interface the HTTP server binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    environment: Environment = Field(
        default="production", description="'development' relaxes secret checks."
    )
    log_level: LogLevel = Field(default="info", description="Minimum log level.")
    log_format: LogFormat = Field(
        default="auto", description="'json', 'console', or 'auto' (console on a TTY)."
    )
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES, ge=256, description="Largest signal accepted, bytes."
    )
    redis_startup_attempts: int = Field(
        default=10, ge=1, description="Redis pings at start-up before giving up."
    )
    redis_backoff_max_s: float = Field(
        default=5.0, gt=0, le=5.0, description="Cap of the reconnect backoff, seconds."
    )
    shutdown_grace_s: float = Field(
        default=20.0, gt=0, description="Longest a graceful shutdown may take, seconds."
    )


def load_settings(cls: type[S], argv: list[str] | None = None) -> S:
    """Build settings from the environment, or print help / one error line per bad setting."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        print(settings_help(cls))
        raise SystemExit(0)
    try:
        return cls()
    except ValidationError as exc:
        _fail(cls, exc)


def _fail(cls: type[ServiceSettings], exc: ValidationError) -> NoReturn:
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        given = err.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        if _is_secret(cls, name):
            shown = ""
        print(f"configuration error: {name}: {err['msg']}{shown}", file=sys.stderr)
    raise SystemExit(2)


def _is_secret(cls: type[ServiceSettings], env_name: str) -> bool:
    field = cls.model_fields.get(env_name.lower())
    return field is not None and "Secret" in str(field.annotation)


def settings_help(cls: type[ServiceSettings]) -> str:
    lines = [f"Settings for {cls.__module__.split('.')[0]} (environment variables):", ""]
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if _is_secret(cls, name.upper()):
            default = "unset" if default is None else "<secret>"
        lines.append(f"  {name.upper():<28} default: {default}")
        if field.description:
            lines.append(f"  {'':<28} {field.description}")
    return "\n".join(lines)
