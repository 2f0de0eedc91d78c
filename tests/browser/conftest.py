"""Real headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright.

No browser is downloaded: Playwright launches the system Chromium. Without it (or without
the ``playwright`` package) every browser test is skipped with the reason, so the rest of
the suite still runs; CI installs both (see tests/browser/README.md).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.redis_server import remove_redis, start_redis
from tests.support.services import ServiceProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Request, WebSocket

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def browser_skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright; no browser download needed)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    reason = browser_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageWatch:
    """Everything a page reported that a test may want to assert on."""

    origin: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    #: Every WebSocket frame the page received: proves what the gateway did (not) send.
    frames: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text}")

    def on_page_error(self, exc: Exception) -> None:
        self.errors.append(f"page error: {exc}")

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)
        if not request.url.startswith((self.origin, "data:")):
            self.foreign_requests.append(request.url)

    def on_websocket(self, ws: WebSocket) -> None:
        self.requests.append(ws.url)  # Playwright reports WebSockets apart from requests
        if not ws.url.startswith(self.origin.replace("http", "ws", 1)):
            self.foreign_requests.append(ws.url)
        ws.on("framereceived", lambda payload: self.frames.append(str(payload)))

    def script_errors(self) -> list[str]:
        """Errors other than the browser's own reports of failed connections."""
        network = ("Failed to load resource", "WebSocket connection to", "net::ERR_")
        return [e for e in self.errors if not any(n in e for n in network)]


async def open_page(
    browser: Browser, url: str, origin: str, **context: Any
) -> tuple[Page, PageWatch]:
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    watch = PageWatch(origin)
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    page.on("request", watch.on_request)
    page.on("websocket", watch.on_websocket)
    await page.goto(url)
    return page, watch


ADMIN_TOKEN = "browser-admin-token-0123456789"


@pytest.fixture(scope="module")
def shared_gateway() -> Iterator[tuple[str, ServiceProcess]]:
    """One Redis and one gateway for the tests that do not restart it (starting them is
    most of a browser test's time)."""
    if (reason := browser_skip_reason()) is not None:
        pytest.skip(reason)  # module fixtures start first: skip before paying for them
    server = start_redis()
    gateway = ServiceProcess("gateway", {"REDIS_URL": server.url, "ADMIN_TOKEN": ADMIN_TOKEN})
    try:
        gateway.start()
        yield server.url, gateway
    finally:
        gateway.stop()
        remove_redis(server)
