"""Refusals of the HTTP API, answered as JSON ``{"error": <word>, "message": ...}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class ApiError(BaseModel):
    """The body of every refusal of the signal API (OpenAPI: each 4xx/5xx it declares)."""

    # Some refusals add fields: invalid_signal names the item's ``index`` and ``field``.
    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A stable word, for programs: 'invalid_query', ...")
    message: str | None = Field(default=None, description="What is wrong, for people.")


def error_responses(*statuses: int, by_ref: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that answers these statuses with an ``ApiError``.

    ``by_ref``: for a route whose own media type is not JSON (the SSE stream): FastAPI files
    a ``model`` under the route's media type, which documented its JSON refusals as
    text/event-stream. The signal API's routes put ``ApiError`` in the document.
    """
    if by_ref:
        schema = {"$ref": f"#/components/schemas/{ApiError.__name__}"}
        return {s: {"content": {"application/json": {"schema": schema}}} for s in statuses}
    return {status: {"model": ApiError} for status in statuses}


@dataclass
class Refused(Exception):
    """A refused request: HTTP status, error word (stable, for programs), message, headers."""

    status: int
    error: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        body = ApiError(error=self.error, message=self.message).model_dump()
        return JSONResponse(body, status_code=self.status, headers=self.headers or None)


def unauthorized(message: str) -> Refused:
    return Refused(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})
