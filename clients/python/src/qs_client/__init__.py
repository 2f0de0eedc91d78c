"""Quantum Signals client: a resumable stream of typed signals, and the HTTP API.

    async with SignalStream(["http://127.0.0.1:8000"]) as stream:
        async for item in stream:
            ...  # Signal, or a Recovery notice

The gateway's resume protocol is specified in the repository's docs/delivery.md.
"""

from qs_client.api import ApiClient
from qs_client.errors import (
    ApiError,
    AuthRefused,
    GatewayUnreachable,
    QSClientError,
)
from qs_client.models import Recovery, Signal
from qs_client.offsets import Position, is_newer, parse_position
from qs_client.stream import SignalStream

__version__ = "0.1.0"

__all__ = [
    "ApiClient",
    "ApiError",
    "AuthRefused",
    "GatewayUnreachable",
    "Position",
    "QSClientError",
    "Recovery",
    "Signal",
    "SignalStream",
    "__version__",
    "is_newer",
    "parse_position",
]
