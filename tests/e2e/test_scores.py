"""Scores end to end: a real monitor scores its signals, a real gateway serves the scorecard.

With AUTH_REQUIRED, GET /api/scores wants a client token, and the token's symbols claim
limits the rows, as it limits GET /api/signals.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import ServiceFactory

pytestmark = pytest.mark.e2e

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
STRATEGIES = ("sma_cross", "ema_cross", "rsi", "macd_cross", "bollinger")


def bearer(symbols: list[str]) -> dict[str, str]:
    claims = {"sub": "alice", "exp": time.time() + 300, "symbols": symbols}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"}


async def scored_card(
    http: httpx.AsyncClient, headers: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """The scorecard once some strategy has signals scored after 20 bars."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = await http.get("/api/scores", headers=headers)
        assert reply.status_code == 200, reply.text
        card: dict[str, Any] = reply.json()
        if any(row["hit_rate_20"] is not None for row in card["scores"]):
            return card
        assert time.monotonic() < deadline, f"nothing scored after 20 bars: {card}"
        await asyncio.sleep(0.2)


async def test_the_scorecard_of_a_real_monitor_limited_by_the_symbols_claim(
    service_factory: ServiceFactory,
) -> None:
    gateway = service_factory("gateway", auth_required="true", jwt_secret=SECRET)
    service_factory(
        "monitor", tick_interval_s=0.02, symbols="AAA,BBB", strategies=",".join(STRATEGIES)
    )
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        assert (await http.get("/api/scores")).status_code == 401
        card = await scored_card(http, bearer(["AAA"]), timeout_s=40)
        everything = (await http.get("/api/scores", headers=bearer(["*"]))).json()
        only_rsi = await http.get(
            "/api/scores", params={"strategy": "rsi", "symbol": "BBB"}, headers=bearer(["*"])
        )

    assert card["window_signals"] == 100
    rows = card["scores"]
    assert rows and {row["symbol"] for row in rows} == {"AAA"}
    for row in rows:
        assert row["strategy"] in STRATEGIES
        assert row["signals"] > 0
        for name in ("hit_rate_1", "hit_rate_5", "hit_rate_20"):
            assert row[name] is None or 0.0 <= row[name] <= 1.0
        assert row["avg_move_5"] is None or -1.0 <= row["avg_move_5"] <= 1.0
    # The claim "*" sees both symbols; filters narrow the rows.
    assert {row["symbol"] for row in everything["scores"]} == {"AAA", "BBB"}
    assert [(r["symbol"], r["strategy"]) for r in only_rsi.json()["scores"]] in (
        [("BBB", "rsi")],
        [],  # BBB's RSI has not signalled yet
    )
