"""What can go wrong, as exceptions the CLI maps to its exit codes."""

from __future__ import annotations


class QSClientError(Exception):
    """Base of every error this package raises."""


class GatewayUnreachable(QSClientError):
    """No gateway URL could be connected to (within the time allowed)."""


class AuthRefused(QSClientError):
    """The gateway refused the credentials (bad/expired token, wrong role)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiError(QSClientError):
    """The HTTP API answered with an error status; ``body`` is its decoded JSON (or text)."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body
