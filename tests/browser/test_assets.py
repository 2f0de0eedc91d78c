"""The page's files and HTTP routes, without a browser (these run everywhere)."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.http.web import INDEX_FILE, STATIC_DIR, content_security_policy, web_router

ROOT = Path(__file__).resolve().parents[2]
VENDORED = STATIC_DIR / "vendor" / "socket.io.min.js"
VENDORED_SHA256 = "d5d79a35039e860b32bdef4795528b05c2f788d4b2d9dacc913120e2878f7b3f"
CHARTS = STATIC_DIR / "vendor" / "lightweight-charts.standalone.production.js"
CHARTS_SHA256 = "e21cc5caa0226ef30bd8549c50b9ef926615f2a4ee6b4e486353477a55f598cf"
# The one absolute URL the page may hold: the chart library's attribution link (a link a
# person can follow, never a request the page makes).
ATTRIBUTION = '<a href="https://www.tradingview.com/"'
MODULES = (
    "alerts.js",
    "app.js",
    "auth.js",
    "qs-client.js",
    "charts.js",
    "format.js",
    "indicators.js",
    "scores.js",
    "sparkline.js",
    "strategies.js",
    "view.js",
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(web_router())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client


def test_vendored_client_is_the_pinned_release() -> None:
    assert hashlib.sha256(VENDORED.read_bytes()).hexdigest() == VENDORED_SHA256
    assert VENDORED.read_text().startswith("/*!\n * Socket.IO v4.8.4\n")
    assert (STATIC_DIR / "vendor" / "LICENSE.socket.io-client").is_file()


def test_vendored_chart_library_is_the_pinned_release() -> None:
    assert hashlib.sha256(CHARTS.read_bytes()).hexdigest() == CHARTS_SHA256
    assert "TradingView Lightweight Charts\u2122 v5.2.1" in CHARTS.read_text()[:200]
    assert (
        (STATIC_DIR / "vendor" / "LICENSE.lightweight-charts")
        .read_text()
        .lstrip()
        .startswith("Apache License")
    )
    readme = (STATIC_DIR / "vendor" / "README.md").read_text()
    assert CHARTS_SHA256 in readme and "lightweight-charts 5.2.1" in readme


def test_vendored_client_matches_the_js_test_client() -> None:
    installed = ROOT / "tests" / "js" / "node_modules" / "socket.io-client" / "dist"
    if not installed.is_dir():
        pytest.skip("tests/js not installed (npm ci in tests/js)")
    assert (installed / "socket.io.min.js").read_bytes() == VENDORED.read_bytes()


def test_every_static_file_ships_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway"]
    package_dir = STATIC_DIR.parent.parent  # the gateway package
    shipped = {p for pattern in patterns for p in package_dir.glob(pattern) if p.is_file()}
    files = {p for p in STATIC_DIR.rglob("*") if p.is_file()} | {INDEX_FILE}
    assert files - shipped == set()


def test_page_uses_only_relative_urls() -> None:
    # Absolute paths would break behind an ingress that strips a path prefix.
    for path in (INDEX_FILE, *(STATIC_DIR / m for m in MODULES)):
        text = path.read_text().replace(ATTRIBUTION, "", 1 if path == INDEX_FILE else 0)
        assert not re.search(r"""(?:src|href)="/|fetch\(\s*["'`]/|https?://""", text), path


def test_a_token_urls_origin_is_the_only_other_connect_source() -> None:
    csp = content_security_policy("<p>", "https://idp.example:8443/oauth/token?aud=qs")
    assert "connect-src 'self' https://idp.example:8443;" in csp
    # A path is on the page's own origin: the policy stays as it is.
    assert content_security_policy("<p>", "/auth/token") == content_security_policy("<p>")


async def test_index_is_served_with_a_strict_policy(http: httpx.AsyncClient) -> None:
    for path in ("/", "/index.html"):
        resp = await http.get(path)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        assert resp.headers["cache-control"] == "no-cache"
        csp = resp.headers["content-security-policy"]
        assert csp == content_security_policy(resp.text)
        assert "default-src 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]{44}';", csp)
    # The page is never served without its policy, e.g. as a static file.
    assert (await http.get("/static/index.html")).status_code == 404


async def test_assets_and_info(http: httpx.AsyncClient) -> None:
    for path, kind in [
        ("/static/app.js", "javascript"),
        ("/static/qs-client.js", "javascript"),
        ("/static/style.css", "text/css"),
        ("/static/vendor/socket.io.min.js", "javascript"),
        ("/static/vendor/lightweight-charts.standalone.production.js", "javascript"),
        *((f"/static/{m}", "javascript") for m in MODULES),
        ("/static/favicon.svg", "image/svg"),
    ]:
        resp = await http.get(path)
        assert resp.status_code == 200, path
        assert kind in resp.headers["content-type"], path
    etag = (await http.get("/static/app.js")).headers["etag"]
    assert (await http.get("/static/app.js", headers={"if-none-match": etag})).status_code == 304
    assert (await http.get("/static/%2e%2e/web.py")).status_code == 404  # no traversal
    assert (await http.get("/static/")).status_code == 404

    info = (await http.get("/api/info")).json()
    assert set(info) == {"replica", "pid", "started_at", "market", "auth"}
    assert info["market"] is None  # no Redis here, so no monitor metadata
    assert info["auth"] == {"required": False, "token_url": None}
    assert info["replica"]
