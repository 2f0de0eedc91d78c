"""A tiny reverse proxy that does what an ingress with a path prefix does.

``/signals/anything`` goes to the gateway as ``/anything`` (nginx-ingress
``path: /signals(/|$)(.*)`` with ``rewrite-target: /$2``), HTTP and WebSocket alike, and
the Host header is passed through unchanged, as ingress controllers do (the gateway's
same-origin check compares it with the page's Origin).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from tests.support.redis_server import free_port

# Per-hop headers, plus those aiohttp recomputes for the body it actually sends.
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "upgrade",
    "transfer-encoding",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
    "content-encoding",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-accept",
    "sec-websocket-protocol",
}


def _forwardable(headers: object) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}  # type: ignore[attr-defined]


async def _pump(
    src: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
    dst: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
) -> None:
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
    await dst.close()


@contextlib.asynccontextmanager
async def prefix_proxy(upstream: str, prefix: str) -> AsyncIterator[str]:
    """Serve ``upstream`` under ``prefix``; yields the proxy's base URL (no trailing slash)."""
    session = aiohttp.ClientSession(auto_decompress=False)

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if path != prefix and not path.startswith(prefix + "/"):
            return web.Response(status=404, text="outside the ingress prefix")
        target = upstream + (path[len(prefix) :] or "/")
        if request.rel_url.raw_query_string:
            target += "?" + request.rel_url.raw_query_string
        headers = _forwardable(request.headers)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            client = await session.ws_connect(target.replace("http", "ws", 1), headers=headers)
            server = web.WebSocketResponse()
            await server.prepare(request)
            pumps = [
                asyncio.create_task(_pump(client, server)),
                asyncio.create_task(_pump(server, client)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pumps:
                task.cancel()
            await client.close()
            await server.close()
            return server
        async with session.request(
            request.method,
            target,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            out_headers = _forwardable(resp.headers)
            if "Content-Encoding" in resp.headers:
                out_headers["Content-Encoding"] = resp.headers["Content-Encoding"]
            return web.Response(status=resp.status, body=body, headers=out_headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    try:
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}{prefix}"
    finally:
        await runner.cleanup()
        await session.close()
