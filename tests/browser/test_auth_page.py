"""The page against a gateway with AUTH_REQUIRED, in real headless Chromium: without a token
it says how to get one and receives nothing; with a pasted token, or one fetched from the
operator's token URL (PAGE_TOKEN_URL, a small identity provider on another origin that wants
its session cookie), it connects, loads history and bars with the token, and gets signals."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import jwt
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from common.constants import DEFAULT_CHANNEL, bars_key
from tests.browser.conftest import open_page
from tests.browser.test_charts import bar_row
from tests.browser.test_page import publish_with_history, row, signal, wait_ready
from tests.conftest import ServiceFactory
from tests.support.redis_server import free_port

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

expect = pytest.importorskip("playwright.async_api", reason="playwright not installed").expect

pytestmark = pytest.mark.e2e

SECRET = "an-hs256-secret-for-the-page-test-0123456789"
COOKIE = "idp_session"


def make_token(symbols: list[str]) -> str:
    claims = {"sub": "alice", "exp": time.time() + 600, "symbols": symbols}
    return jwt.encode(claims, SECRET, "HS256")


@contextlib.asynccontextmanager
async def identity_provider(port: int, page_origin: str) -> AsyncIterator[list[str]]:
    """GET /token: a token for a browser with the IdP's session cookie, else 401; CORS with
    credentials for the page's origin only. Yields the cookies it saw."""
    seen: list[str] = []
    cors = {
        "Access-Control-Allow-Origin": page_origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }

    async def token(request: web.Request) -> web.Response:
        seen.append(request.cookies.get(COOKIE, ""))
        if request.cookies.get(COOKIE) != "alice":
            return web.json_response({"error": "sign in first"}, status=401, headers=cors)
        return web.json_response({"token": make_token(["BTC-USD"])}, headers=cors)

    app = web.Application()
    app.router.add_get("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield seen
    finally:
        await runner.cleanup()


async def seed(redis_url: str) -> aioredis.Redis:
    client = aioredis.Redis.from_url(redis_url)
    rows = [bar_row(i, 60000.0 + i) for i in range(30)]
    await client.rpush(bars_key(DEFAULT_CHANNEL, "BTC-USD"), *rows)
    await publish_with_history(client, signal(1, "BTC-USD", "BUY", 60000.0))
    return client


async def assert_needs_token(page: Page, says: str, *, empty: bool = True) -> None:
    await expect(page.locator("#auth")).to_be_visible()
    await expect(page.locator("#auth-hint")).to_contain_text(says)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "refused")
    await expect(page.locator("#conn-text")).to_have_text(
        "Not connected: an access token is needed"
    )
    if empty:  # nothing was received
        assert await page.locator("#signal-rows tr").count() == 0


async def assert_live(page: Page, client: aioredis.Redis, n: int) -> None:
    await wait_ready(page)
    await expect(page.locator("body")).to_have_attribute("data-auth", "ok")
    await expect(row(page, signal(1, "BTC-USD", "BUY", 60000.0))).to_be_visible()
    # The bars came from GET api/bars with the token (401 without it).
    await expect(page.locator('#cards li[data-symbol="BTC-USD"]')).to_have_attribute(
        "data-bars", "loaded"
    )
    await page.wait_for_function("() => window.__qs.charts['BTC-USD']?.inspect().candles === 30")
    live = signal(n, "BTC-USD", "SELL", 60100.0)
    await publish_with_history(client, live)
    await expect(row(page, live)).to_be_visible(timeout=2000)


async def test_a_pasted_token(
    browser: Browser, service_factory: ServiceFactory, redis_url: str
) -> None:
    gateway = service_factory("gateway", auth_required="true", jwt_secret=SECRET)
    client = await seed(redis_url)
    try:
        page, watch = await open_page(browser, f"{gateway.base_url}/", gateway.base_url)
        await assert_needs_token(page, "Ask the operator of this gateway for an access token")
        await page.get_by_label("Token", exact=True).fill("not-a-jwt")
        await page.keyboard.press("Enter")
        await expect(page.locator("#auth-hint")).to_contain_text(
            "The gateway refused the access token (malformed token)"
        )
        await page.get_by_label("Token", exact=True).fill(make_token(["BTC-USD"]))
        await page.get_by_role("button", name="Use token").click()
        await assert_live(page, client, 2)
        stored = await page.evaluate("sessionStorage.getItem('quantum-signals.token')")
        assert jwt.decode(stored, SECRET, ["HS256"])["sub"] == "alice"
        # A reload in the same tab keeps the token: live again without asking.
        await page.reload()
        await assert_live(page, client, 3)
        await page.get_by_role("button", name="Forget token").click()
        await assert_needs_token(page, "access token", empty=False)
        assert watch.foreign_requests == []
        assert watch.script_errors() == []
    finally:
        await client.aclose()


async def test_a_token_from_the_token_url(
    browser: Browser, service_factory: ServiceFactory, redis_url: str
) -> None:
    idp_port = free_port()
    token_url = f"http://127.0.0.1:{idp_port}/token"
    gateway = service_factory(
        "gateway", auth_required="true", jwt_secret=SECRET, page_token_url=token_url
    )
    origin = gateway.base_url
    client = await seed(redis_url)
    try:
        async with identity_provider(idp_port, origin) as seen:
            page, watch = await open_page(browser, f"{origin}/", origin)
            # Fetched once by itself; the IdP wants its session first.
            await assert_needs_token(page, "Could not get a token: the token URL answered HTTP 401")
            await expect(page.locator("#auth-hint")).to_contain_text(token_url)
            await page.context.add_cookies([{"name": COOKIE, "value": "alice", "url": token_url}])
            await page.get_by_role("button", name="Get a token").click()
            await assert_live(page, client, 2)
            assert seen == ["", "alice"]  # sent with credentials: the cookie went along
            # The page's only other origin is the token URL, which its CSP names.
            assert set(watch.foreign_requests) == {token_url}
            assert watch.script_errors() == []
    finally:
        await client.aclose()
