"""The gateway's HTTP API: publish, history, broadcast (httpx)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from qs_client.errors import ApiError, AuthRefused, GatewayUnreachable


class ApiClient:
    """A thin client of one gateway's ``/api``; every error is a QSClientError."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 10.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def publish(self, signals: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        """POST /api/signals: ``{"results": [{"id", "offset", "duplicate"}, ...]}``."""
        body = signals if isinstance(signals, Mapping) else list(signals)
        return await self._request("POST", "/api/signals", json=body)

    async def history(self, **filters: str | int | None) -> Any:
        """GET /api/signals: ``{"signals": [...], "next_cursor", "epoch"}``."""
        params = {k: v for k, v in filters.items() if v is not None}
        return await self._request("GET", "/api/signals", params=params)

    async def broadcast(self, message: str, level: str = "info") -> Any:
        """POST /api/broadcast (admin token): a system_message to every connected client."""
        return await self._request(
            "POST", "/api/broadcast", json={"message": message, "level": level}
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # refused, DNS, timeout: nobody answered
            raise GatewayUnreachable(f"{self._http.base_url}: {exc!r}") from exc
        body = _decode(response)
        if response.status_code in (401, 403):
            raise AuthRefused(_detail(body))
        if response.is_error:
            raise ApiError(response.status_code, body)
        return body


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body)
    return str(body)
