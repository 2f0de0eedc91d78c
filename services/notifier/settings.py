"""Notifier settings (environment variables; ``python -m notifier --help`` lists them).

What to deliver where is not a setting but the destinations file (``NOTIFIER_CONFIG``,
``notifier.config``); docs/notifier.md describes both.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from common.settings import ServiceSettings

DEFAULT_CONFIG_PATH = Path("/etc/quantum-signals/notifier.yaml")


class NotifierSettings(ServiceSettings):
    cli_commands: ClassVar[str] = (
        "\nAlso: python -m notifier dead-letters --help (list, retry or drop dead letters)."
    )
    port: int = Field(default=8003, ge=1, le=65535, description="HTTP port for probes and metrics.")
    notifier_config: Path = Field(
        default=DEFAULT_CONFIG_PATH, description="The destinations file (YAML, docs/notifier.md)."
    )
    notifier_consumer: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="Consumer name in the destinations' Redis consumer groups (default: the "
        "host name, the pod name in Kubernetes). Unique per replica.",
    )
    notifier_claim_idle_ms: int = Field(
        default=30_000,
        ge=100,
        description="A replica taking over a destination claims another consumer's pending "
        "entries once they have been idle this long (a crashed replica's in-flight messages).",
    )
    notifier_lease_ttl_s: float = Field(
        default=10.0,
        ge=0.3,
        le=300,
        description="A dead replica's destinations are taken over within this, s.",
    )
    notifier_read_count: int = Field(
        default=32, ge=1, le=1000, description="Stream entries read per XREADGROUP."
    )
    notifier_dead_letters_maxlen: int = Field(
        default=100_000, ge=1, description="Dead letters kept (approximate); the oldest go first."
    )
