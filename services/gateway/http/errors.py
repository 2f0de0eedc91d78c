"""Refusals of the HTTP API, answered as JSON ``{"error": <word>, "message": ...}``."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.responses import JSONResponse


@dataclass
class Refused(Exception):
    """A refused request: HTTP status, error word (stable, for programs), message, headers."""

    status: int
    error: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        body = {"error": self.error, "message": self.message}
        return JSONResponse(body, status_code=self.status, headers=self.headers or None)


def unauthorized(message: str) -> Refused:
    return Refused(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})
