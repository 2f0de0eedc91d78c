"""Settings shared by both services, and the start-up helpers that load them.

Every setting comes from an environment variable named after the field in upper case
(``redis_url`` -> ``REDIS_URL``). Nothing is created at import time: ``load_settings``
builds the object once in ``__main__`` and passes it down, so tests build their own.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, NoReturn, Self, TypeVar

from pydantic import (
    BaseModel,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.cli import EXIT_USAGE, parse_command_line
from common.constants import DEFAULT_CHANNEL, DEFAULT_MAX_MESSAGE_BYTES
from common.redis_url import parse_redis_url

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "json", "console"]
Environment = Literal["development", "production"]

S = TypeVar("S", bound="ServiceSettings")


class SettingsError(ValueError):
    """A check across several settings; ``fields`` are the ones it concerns."""

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields


class HistorySettings(BaseModel):
    """What every publisher of the shared history stream must agree on (the monitor, and the
    gateway's publish API): each publish trims the stream and remembers ids by these."""

    dedupe_ttl_s: int = Field(
        default=86_400,
        ge=1,
        description="How long a published signal id is remembered (a repeat answers the "
        "original offset). Keep it the same on the monitor and the gateways.",
    )
    history_maxlen: int = Field(
        default=10_000,
        ge=1,
        description="Signals kept in the history stream (approximate). Keep it the same on the "
        "monitor and the gateways: each publish trims the shared stream.",
    )
    history_max_age_s: int = Field(
        default=86_400,
        ge=1,
        description="Signals older than this leave the history stream. Keep it the same on the "
        "monitor and the gateways.",
    )


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", validate_default=True, frozen=True)

    #: The service's subcommands, shown by ``--help`` (each answers its own ``--help``).
    cli_commands: ClassVar[str] = ""

    redis_url: str = Field(
        default="redis://localhost:6379/0",
        description="Redis URL: redis://[user:password@]host:port/db, rediss:// for TLS, or "
        "redis+sentinel://[user:password@]host:port,host:port/db/master for Sentinel "
        "(rediss+sentinel:// with TLS). docs/security.md",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Redis password (ACL user from REDIS_URL); lets the URL stay free of secrets.",
    )
    redis_tls_ca_file: FilePath | None = Field(
        default=None, description="rediss: PEM CA bundle that signed the Redis server certificate."
    )
    redis_tls_cert_file: FilePath | None = Field(
        default=None, description="rediss: PEM client certificate (mutual TLS), with the key file."
    )
    redis_tls_key_file: FilePath | None = Field(
        default=None, description="rediss: PEM private key of REDIS_TLS_CERT_FILE."
    )
    redis_tls_check_hostname: bool = Field(
        default=True, description="rediss: check the server certificate names the host."
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None, description="Sentinel: password of the sentinels themselves (requirepass)."
    )
    signal_channel: str = Field(
        default=DEFAULT_CHANNEL, min_length=1, description="Pub/Sub channel carrying signals."
    )
    host: str = Field(default="0.0.0.0", description="Interface the HTTP server binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Internal port for /metrics, /livez and /readyz, which PORT then no longer "
        "serves, so no Ingress can expose them (the chart sets 9090). 0: serve them on PORT "
        "(local runs). The monitor, which has no other routes, then listens only here.",
    )
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

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        parse_redis_url(value)
        return value

    @model_validator(mode="after")
    def _check_metrics_port(self) -> Self:
        if self.metrics_port == self.port:
            raise SettingsError(
                "METRICS_PORT must differ from PORT (0 serves the metrics and probes on PORT)",
                "metrics_port",
                "port",
            )
        return self

    @model_validator(mode="after")
    def _check_redis_security(self) -> Self:
        target = parse_redis_url(self.redis_url)
        tls_files = {
            "redis_tls_ca_file": self.redis_tls_ca_file,
            "redis_tls_cert_file": self.redis_tls_cert_file,
            "redis_tls_key_file": self.redis_tls_key_file,
        }
        if any(tls_files.values()) and not target.tls:
            raise SettingsError(
                "REDIS_TLS_* files are set but REDIS_URL is not rediss:// (or rediss+sentinel://)",
                "redis_url",
                *(name for name, path in tls_files.items() if path is not None),
            )
        if (self.redis_tls_cert_file is None) != (self.redis_tls_key_file is None):
            raise SettingsError(
                "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together",
                "redis_tls_cert_file",
                "redis_tls_key_file",
            )
        if target.password and self.redis_password is not None:
            raise SettingsError(
                "set the Redis password in REDIS_URL or REDIS_PASSWORD, not both",
                "redis_url",
                "redis_password",
            )
        if self.redis_sentinel_password is not None and not target.sentinels:
            raise SettingsError(
                "REDIS_SENTINEL_PASSWORD needs a redis+sentinel:// REDIS_URL",
                "redis_sentinel_password",
                "redis_url",
            )
        return self


def load_settings(cls: type[S], argv: list[str] | None = None) -> S:
    """Answer the command line, then build settings from the environment, or print one
    error line per bad setting, naming its environment variable, and exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    parse_command_line(_service(cls), settings_help(cls), argv, cls.cli_commands)
    try:
        return cls()
    except ValidationError as exc:
        _fail(cls, exc)


def _fail(cls: type[ServiceSettings], exc: ValidationError) -> NoReturn:
    for err in exc.errors(include_url=False):
        names = _variables(cls, err)
        given = err.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        if any(_is_secret(cls, name) for name in names):
            shown = ""
        shown = _URL_PASSWORD.sub(r"\1***@", shown)
        print(f"configuration error: {', '.join(names)}: {err['msg']}{shown}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _variables(cls: type[ServiceSettings], err: Mapping[str, Any]) -> list[str]:
    """The environment variables an error is about.

    A field's error carries its name; a model validator's error has no location, so it
    names its fields (``SettingsError``) or, failing that, the variables its message cites.
    """
    if err["loc"]:
        return [str(err["loc"][0]).upper()]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, SettingsError) and cause.fields:
        return [f.upper() for f in cause.fields]
    cited = {}
    for name in cls.model_fields:
        found = re.search(rf"\b{name.upper()}\b", err["msg"])
        if found:
            cited[name.upper()] = found.start()
    # In the order the message names them: the variable the check is about comes first.
    return sorted(cited, key=cited.__getitem__) or ["settings"]


# "scheme://user:password@" -> "scheme://user:***@": a bad REDIS_URL never echoes its password.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def _is_secret(cls: type[ServiceSettings], env_name: str) -> bool:
    field = cls.model_fields.get(env_name.lower())
    return field is not None and "Secret" in str(field.annotation)


def _service(cls: type[ServiceSettings]) -> str:
    return cls.__module__.split(".")[0]


def settings_help(cls: type[ServiceSettings]) -> str:
    lines = [f"Settings for {_service(cls)} (environment variables):", ""]
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if _is_secret(cls, name.upper()):
            default = "unset" if default is None else "<secret>"
        lines.append(f"  {name.upper():<28} default: {default}")
        if field.description:
            lines.append(f"  {'':<28} {field.description}")
    return "\n".join(lines)
