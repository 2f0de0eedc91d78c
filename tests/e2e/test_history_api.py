"""GET /api/signals on a real gateway over a real history stream, against a reference filter."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.constants import DEFAULT_CHANNEL
from common.offsets import parse_position
from common.publish import SignalPublisher
from tests.conftest import ServiceFactory

pytestmark = pytest.mark.e2e

SYMBOLS = ["AAA", "BBB", "CCC", None]
STRATEGIES = ["sma", "rsi"]
JWT_SECRET = "an-hs256-secret-that-is-long-enough-0123456789"


async def fill(client: aioredis.Redis, count: int) -> list[dict[str, Any]]:
    """``count`` signals through the monitor's script; each as the history answers it."""
    publisher = SignalPublisher(client, DEFAULT_CHANNEL)
    stored = []
    for n in range(count):
        signal: dict[str, Any] = {"id": f"s{n}", "type": "BUY" if n % 3 else "SELL", "price": n}
        if SYMBOLS[n % 4] is not None:
            signal["symbol"] = SYMBOLS[n % 4]
        signal["strategy"] = STRATEGIES[n % 2]
        position = await publisher.publish(signal)
        stored.append({"offset": position, **signal})
        if n % 5 == 4:
            await asyncio.sleep(0.003)  # several stream milliseconds, for the time bounds
    return stored


def ms_of(signal: dict[str, Any]) -> int:
    position = parse_position(signal["offset"])
    assert position is not None
    return position.offset[0]


def reference(stored: list[dict[str, Any]], q: dict[str, Any]) -> list[str]:
    """What the API must answer, computed the plain way."""

    def keep(s: dict[str, Any]) -> bool:
        pos = parse_position(s["offset"])
        assert pos is not None
        return (
            # Live delivery's rule: a signal without a symbol passes every symbol filter.
            ("symbol" not in q or s.get("symbol") in (q["symbol"], None))
            and ("strategy" not in q or s["strategy"] == q["strategy"])
            and ("type" not in q or s["type"] == q["type"])
            and ("since_offset" not in q or pos.offset > q["since_offset"][1])
            and ("until_offset" not in q or pos.offset <= q["until_offset"][1])
            and ("since_ms" not in q or pos.offset[0] >= q["since_ms"])
            and ("until_ms" not in q or pos.offset[0] <= q["until_ms"])
        )

    ids = [s["id"] for s in stored if keep(s)]
    return ids if q["order"] == "asc" else ids[::-1]


def params_of(q: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        k: q[k] for k in ("symbol", "strategy", "type", "order", "limit") if k in q
    }
    for side in ("since", "until"):
        if f"{side}_offset" in q:
            params[side] = q[f"{side}_offset"][0]
        if f"{side}_ms" in q:
            params[side] = str(q[f"{side}_ms"] / 1000)
    return params


async def pages(http: httpx.AsyncClient, params: dict[str, Any]) -> list[str]:
    """Every page, following next_cursor; fails on a repeated id or too many pages."""
    ids: list[str] = []
    cursor = None
    for _ in range(200):
        response = await http.get(
            "/api/signals", params={**params, "cursor": cursor} if cursor else params
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["signals"]) <= params.get("limit", 50)
        ids += [s["id"] for s in body["signals"]]
        cursor = body["next_cursor"]
        if cursor is None:
            assert len(ids) == len(set(ids))
            return ids
    raise AssertionError("no end of pages")


def queries(stored: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    offsets = st.sampled_from([(s["offset"], parse_position(s["offset"]).offset) for s in stored])  # type: ignore[union-attr]
    times = st.sampled_from([ms_of(s) for s in stored])
    return st.fixed_dictionaries(
        {"order": st.sampled_from(["asc", "desc"]), "limit": st.integers(1, 9)},
        optional={
            "symbol": st.sampled_from(["AAA", "BBB", "CCC"]),
            "strategy": st.sampled_from(STRATEGIES),
            "type": st.sampled_from(["BUY", "SELL"]),
            "since_offset": offsets,
            "until_offset": offsets,
            "since_ms": times,
            "until_ms": times,
        },
    ).filter(lambda q: not ("since_offset" in q and "since_ms" in q))
    # (until_offset and until_ms together: the later one in params wins; filtered below)


async def test_pages_match_a_reference_filter_whatever_the_query(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    stored = await fill(redis_client, 60)
    # A small scan bound: pages cut short by it (even empty ones) must still neither skip
    # nor repeat an entry.
    gateway = service_factory("gateway", history_scan_max=7)
    examples: list[dict[str, Any]] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(queries(stored))
    def collect(q: dict[str, Any]) -> None:
        if "until_offset" in q and "until_ms" in q:
            del q["until_ms"]
        examples.append(q)

    collect()
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
        for q in examples:
            assert await pages(http, params_of(q)) == reference(stored, q), q


async def test_bad_parameters_are_400_naming_them(service_factory: ServiceFactory) -> None:
    gateway = service_factory("gateway")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        for params, name in [
            ({"type": "HOLD"}, "type"),
            ({"since": "yesterday"}, "since"),
            ({"until": "12:00-x"}, "until"),
            ({"cursor": "not-a-cursor"}, "cursor"),
        ]:
            response = await http.get("/api/signals", params=params)
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "invalid_query"
            assert response.json()["message"].startswith(name)
        assert (await http.get("/api/signals", params={"limit": 0})).status_code == 422
        assert (
            await http.get("/api/signals", params={"since": "2001-01-01T00:00:00Z"})
        ).status_code == 200


async def test_a_symbols_claim_limits_the_answer_when_auth_is_required(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    stored = await fill(redis_client, 12)
    gateway = service_factory("gateway", auth_required="true", jwt_secret=JWT_SECRET)
    claims = {"sub": "alice", "exp": time.time() + 300, "symbols": ["AAA"]}
    bearer = {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, 'HS256')}"}
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        for path in ("/api/signals", "/api/signals/latest"):
            missing = await http.get(path)
            assert missing.status_code == 401 and missing.json()["message"] == "missing_token"
            bad = await http.get(path, headers={"Authorization": "Bearer x.y.z"})
            assert bad.status_code == 401
        seen = (await http.get("/api/signals", headers=bearer)).json()["signals"]
        # Like live delivery: AAA, and the signals that carry no symbol at all.
        expected = [s["id"] for s in stored if s.get("symbol") in ("AAA", None)]
        assert [s["id"] for s in seen] == expected
        other = await http.get("/api/signals", params={"symbol": "BBB"}, headers=bearer)
        # Not BBB's: only what both filters pass, the signals without a symbol.
        symbolless = [s["id"] for s in stored if "symbol" not in s]
        assert [s["id"] for s in other.json()["signals"]] == symbolless
        latest = (await http.get("/api/signals/latest", headers=bearer)).json()["signals"]
        assert [s["id"] for s in latest] == expected[::-1]


async def test_latest_still_works_and_the_openapi_schema_has_the_response_model(
    service_factory: ServiceFactory, redis_client: aioredis.Redis
) -> None:
    stored = await fill(redis_client, 5)
    gateway = service_factory("gateway", api_docs="on")  # /openapi.json
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        latest = (await http.get("/api/signals/latest", params={"limit": 2})).json()
        assert [s["id"] for s in latest["signals"]] == ["s4", "s3"]
        assert latest["signals"][0]["offset"] == stored[4]["offset"]
        page = (await http.get("/api/signals", params={"limit": 10})).json()
        assert page["epoch"] == parse_position(stored[0]["offset"]).epoch  # type: ignore[union-attr]
        assert [s["id"] for s in page["signals"]] == [s["id"] for s in stored]
        schema = (await http.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    assert set(components["HistoryPage"]["required"]) == {"signals", "next_cursor", "epoch"}
    assert "offset" in components["HistorySignal"]["required"]
    get_ok = schema["paths"]["/api/signals"]["get"]["responses"]["200"]
    assert get_ok["content"]["application/json"]["schema"]["$ref"].endswith("/HistoryPage")
    post_ok = schema["paths"]["/api/signals"]["post"]["responses"]["200"]
    assert post_ok["content"]["application/json"]["schema"]["$ref"].endswith("/PublishResponse")
