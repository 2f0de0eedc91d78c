"""The live signals page: ``/`` serves it, ``/static/`` its assets, ``/api/info`` the replica,
the monitor's market description and how to obtain a token (AUTH_REQUIRED, PAGE_TOKEN_URL).

The page itself lives outside ``static/`` so that it is only ever served with its
Content-Security-Policy (``/`` and ``/index.html``), never as a plain static file.

Every URL in the page is relative (``static/app.js``, ``api/signals/latest``, the
Socket.IO path), so the same files work at ``/`` and behind an ingress that strips a
path prefix such as ``/signals/``. Nothing is fetched from another origin at run time:
the Socket.IO client is a vendored copy (see ``static/vendor/README.md``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import time
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from common.constants import DEFAULT_CHANNEL, monitor_info_key
from common.redis import REDIS_ERRORS

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_FILE = Path(__file__).resolve().parent / "page" / "index.html"

# The page's only inline script (a trailing-slash fix, see index.html) is allowed by its
# hash, so the policy can refuse every other inline script: a signal field that ever
# reached innerHTML by mistake still could not run.
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _script_hashes(html: str) -> str:
    digests = (hashlib.sha256(body.encode()).digest() for body in _INLINE_SCRIPT.findall(html))
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)


def token_origin(token_url: str | None) -> str | None:
    """The origin of an absolute PAGE_TOKEN_URL, which the page's CSP must let it fetch."""
    url = urlsplit(token_url or "")
    return f"{url.scheme}://{url.netloc}" if url.scheme and url.netloc else None


def content_security_policy(html: str, token_url: str | None = None) -> str:
    # connect-src 'self' covers same-origin ws:/wss: in CSP level 3 browsers; an identity
    # provider's token endpoint (PAGE_TOKEN_URL) is the only other origin the page may call.
    connect = " ".join(filter(None, ("'self'", token_origin(token_url))))
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {_script_hashes(html)}".rstrip(),
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


@cache
def _index(token_url: str | None) -> tuple[str, dict[str, str]]:
    # Read once per process: the file ships inside the package and never changes at run time.
    html = INDEX_FILE.read_text(encoding="utf-8")
    headers = {
        "Content-Security-Policy": content_security_policy(html, token_url),
        # Always revalidate the page itself, so a rollout is picked up on the next reload.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return html, headers


def replica_id() -> str:
    # In Kubernetes the hostname is the pod name, which is what an operator looks for.
    return os.environ.get("HOSTNAME") or socket.gethostname()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def market_info(redis: aioredis.Redis | None, channel: str) -> dict[str, object] | None:
    """The monitor's own description of its market data (monitor/info.py); None if absent."""
    if redis is None:
        return None
    try:
        raw = await redis.hgetall(monitor_info_key(channel))
    except REDIS_ERRORS:
        return None  # the page still loads; the relay's health says Redis is away
    if not raw:
        return None
    info = {_text(k): _text(v) for k, v in raw.items()}
    split = {k: [x for x in info.get(k, "").split(",") if x] for k in ("symbols", "strategies")}
    return {
        "source": info.get("source"),
        "simulated": info.get("simulated") == "1",
        "timeframe": info.get("timeframe") or None,
        **split,
    }


def web_router(
    redis: aioredis.Redis | None = None,
    channel: str = DEFAULT_CHANNEL,
    *,
    auth_required: bool = False,
    token_url: str | None = None,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    started_at = time.time()
    # What the page needs to obtain a token (AUTH_REQUIRED, PAGE_TOKEN_URL); no secret.
    auth = {"required": auth_required, "token_url": token_url}

    @router.get("/", response_class=HTMLResponse)
    @router.get("/index.html", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        html, headers = _index(token_url)
        return HTMLResponse(html, headers=headers)

    @router.get("/api/info")
    async def info() -> dict[str, object]:
        # The pid tells two processes on one host apart (local runs, restarts).
        return {
            "replica": replica_id(),
            "pid": os.getpid(),
            "started_at": started_at,
            "market": await market_info(redis, channel),
            "auth": auth,
        }

    # StaticFiles answers conditional requests (ETag/304), so the 50 KB client is cheap
    # to revalidate; html=False keeps it from serving directory listings or index pages.
    router.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return router
