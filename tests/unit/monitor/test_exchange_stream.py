"""The streaming exchange source's pure parts: the kline parser, its settings, the ccxt seams."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.settings import MonitorSettings
from monitor.sources.exchange_stream import override_ws_urls
from monitor.sources.kline_tap import MalformedKlineError, check_seams, parse_kline
from tests.support.settings import startup_error

# Binance's documented example of a kline event (developers.binance.com, Kline/Candlestick Streams).
DOCUMENTED: dict[str, Any] = {
    "e": "kline",
    "E": 1672515782136,
    "s": "BNBBTC",
    "k": {
        "t": 1672515780000,
        "T": 1672515839999,
        "s": "BNBBTC",
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "0.0010",
        "c": "0.0020",
        "h": "0.0025",
        "l": "0.0015",
        "v": "1000",
        "n": 100,
        "x": False,
        "q": "1.0000",
        "V": "500",
        "B": "123456",
    },
}


def with_kline(**changes: Any) -> dict[str, Any]:
    return {**DOCUMENTED, "k": {**DOCUMENTED["k"], **changes}}


def test_the_documented_kline_event_parses() -> None:
    kline = parse_kline(with_kline(x=True))
    assert (kline.market_id, kline.interval, kline.open_ms, kline.event_ms) == (
        "BNBBTC",
        "1m",
        1672515780000,
        1672515782136,
    )
    assert (kline.open, kline.high, kline.low, kline.close, kline.volume) == (
        0.001,
        0.0025,
        0.0015,
        0.002,
        1000.0,
    )
    assert kline.closed is True


@pytest.mark.parametrize(
    "message",
    [
        [1, 2],
        {"e": "kline", "E": 1},
        with_kline(x="true"),
        with_kline(t="1672515780000"),
        with_kline(o="abc"),
        with_kline(c="nan"),
        with_kline(v="-1"),
        with_kline(h="0.0001"),  # below the low
        {key: value for key, value in DOCUMENTED.items() if key != "E"},
    ],
)
def test_what_binance_would_not_send_is_malformed(message: object) -> None:
    with pytest.raises(MalformedKlineError):
        parse_kline(message)


def test_the_installed_ccxt_has_every_seam_the_tap_uses() -> None:
    import ccxt.pro

    check_seams(ccxt.pro)


def test_stream_urls_are_rehomed_and_rest_urls_left_alone() -> None:
    urls = {
        "spot": "wss://stream.binance.com:9443/ws",
        "ws-api": {"spot": "wss://ws-api.binance.com:443/ws-api/v3"},
        "rest": "https://api.binance.com/api/v3",
    }
    assert override_ws_urls(urls, "ws://127.0.0.1:9000") == {
        "spot": "ws://127.0.0.1:9000/ws",
        "ws-api": {"spot": "ws://127.0.0.1:9000/ws-api/v3"},
        "rest": "https://api.binance.com/api/v3",
    }


def test_streaming_settings() -> None:
    settings = MonitorSettings(
        source="exchange",
        exchange_stream=True,
        exchange_stream_url="ws://127.0.0.1:9000",
        exchange_stream_stale_s=5,
    )
    assert settings.exchange_stream and settings.exchange_stream_stale_s == 5
    assert MonitorSettings().exchange_stream is False


@pytest.mark.parametrize(
    ("env", "named", "message"),
    [
        ({"EXCHANGE_STREAM": "true"}, "EXCHANGE_STREAM, SOURCE", "needs SOURCE=exchange"),
        (
            {"EXCHANGE_STREAM": "true", "SOURCE": "exchange", "EXCHANGE_ID": "kraken"},
            "EXCHANGE_STREAM, EXCHANGE_ID",
            "supports binance, not 'kraken'",
        ),
        (
            {"EXCHANGE_STREAM": "1", "SOURCE": "exchange", "EXCHANGE_STREAM_URL": "http://x"},
            "EXCHANGE_STREAM_URL",
            "must start with ws:// or wss://",
        ),
        ({"EXCHANGE_STREAM_STALE_S": "0"}, "EXCHANGE_STREAM_STALE_S", "greater than 0"),
        ({"EXCHANGE_STREAM": "maybe"}, "EXCHANGE_STREAM", "boolean"),
    ],
)
def test_bad_streaming_settings_stop_the_start_naming_the_variables(
    env: dict[str, str],
    named: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = startup_error(monkeypatch, capsys, MonitorSettings, env).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"configuration error: {named}: "), lines[0]
    assert message in lines[0]


async def test_the_setting_picks_the_streaming_source_and_polling_stays_the_default() -> None:
    from monitor.sources import create_source
    from monitor.sources.exchange import ExchangeSource
    from monitor.sources.exchange_stream import StreamingExchangeSource

    def report(symbol: str, reason: str) -> None: ...

    polling = create_source(MonitorSettings(source="exchange"), report)
    streaming = create_source(
        MonitorSettings(source="exchange", exchange_stream=True, exchange_stream_stale_s=3),
        report,
    )
    try:
        assert isinstance(polling, ExchangeSource)
        assert isinstance(streaming, StreamingExchangeSource)
        assert streaming.stale_s == 3 and streaming.timeframe_s("BTC/USDT") == 60
        assert streaming.ws.urls["api"]["ws"]["spot"].startswith("wss://stream.binance.com")
    finally:
        await polling.aclose()
        await streaming.aclose()
