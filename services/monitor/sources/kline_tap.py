"""The one place that reaches into ccxt's WebSocket internals (``ccxt.pro``), checked at start.

ccxt's ``watch_ohlcv`` keeps a subscription alive and reconnects, but what it returns has lost
what a streaming source needs: Binance's kline event says whether the candle is closed
(``k.x``) and when the exchange sent it (``E``), and ccxt keeps only open time and OHLCV. So
a subclass of ``ccxt.pro.binance`` hands every raw kline event to a callback before ccxt
stores it. Two more seams: a message that is not valid JSON raises inside ccxt's receive
callback, which silently ends that connection's receive loop (nothing is read any more), so
decoding errors are caught and counted instead; and a connection that has gone quiet is
dropped the way ccxt drops a broken order-book connection, so the next ``watch_ohlcv``
dials afresh. ``check_seams`` fails the start-up if a ccxt upgrade moved any of these.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Exchanges whose kline stream format the tap understands.
STREAM_EXCHANGES = ("binance",)


class MalformedKlineError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Kline:
    """One Binance kline event (``<symbol>@kline_<interval>``), as documented by Binance."""

    market_id: str  # "BTCUSDT"
    interval: str  # "1m"
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool  # k.x: this is the candle's final update
    event_ms: int  # E: when the exchange sent it


def _number(kline: dict[str, Any], key: str) -> float:
    value = float(kline[key])  # Binance sends prices as strings
    if not math.isfinite(value) or value < 0:
        raise MalformedKlineError(f"k.{key}={kline[key]!r}")
    return value


def parse_kline(message: object) -> Kline:
    """The kline in ``message``; MalformedKlineError for anything Binance would not send."""
    try:
        if not isinstance(message, dict) or not isinstance(message.get("k"), dict):
            raise MalformedKlineError("no kline object 'k'")
        k = message["k"]
        if not isinstance(k.get("x"), bool) or not isinstance(k.get("t"), int):
            raise MalformedKlineError("k.x must be a boolean and k.t an integer")
        kline = Kline(
            market_id=str(k["s"]),
            interval=str(k["i"]),
            open_ms=k["t"],
            open=_number(k, "o"),
            high=_number(k, "h"),
            low=_number(k, "l"),
            close=_number(k, "c"),
            volume=_number(k, "v"),
            closed=k["x"],
            event_ms=int(message["E"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedKlineError(str(exc) or type(exc).__name__) from None
    if kline.low > kline.high:
        raise MalformedKlineError("low above high")
    return kline


#: (class, attribute) pairs the tap relies on; a ccxt upgrade that moves one fails ``check_seams``.
def _seams(ccxt_pro: Any) -> list[tuple[Any, str]]:
    from ccxt.async_support.base.ws.client import Client

    return [
        (ccxt_pro.binance, "handle_ohlcv"),
        (ccxt_pro.binance, "handle_message"),
        (ccxt_pro.binance, "client"),
        (ccxt_pro.binance, "watch_ohlcv"),
        (Client, "handle_text_or_binary_message"),
        (Client, "reject"),
        (Client, "close"),
    ]


def check_seams(ccxt_pro: Any) -> None:
    missing = [f"{cls.__name__}.{name}" for cls, name in _seams(ccxt_pro) if not hasattr(cls, name)]
    if missing:
        raise RuntimeError(f"this ccxt version lacks what the kline stream uses: {missing}")


def tapped_binance(
    config: dict[str, Any],
    on_kline: Callable[[Kline], None],
    on_malformed: Callable[[str], None],
) -> Any:
    """A ``ccxt.pro.binance`` that calls ``on_kline`` for every well-formed kline event and
    ``on_malformed(reason)`` for every message it had to drop; it never raises into ccxt."""
    import ccxt.pro as ccxt_pro  # heavy import: only when the stream is used

    check_seams(ccxt_pro)

    class TappedBinance(ccxt_pro.binance):  # type: ignore[misc]
        def client(self, url: str) -> Any:
            client = super().client(url)
            if not getattr(client, "_qs_guarded", False):
                _guard_decoding(client, on_malformed)
            return client

        def handle_message(self, client: Any, message: object) -> None:
            if not isinstance(message, dict):
                on_malformed("not_an_object")
                return
            try:
                super().handle_message(client, message)
            except Exception as exc:  # ccxt choking on odd data must not end the receive loop
                on_malformed(type(exc).__name__)

        def handle_ohlcv(self, client: Any, message: dict[str, Any]) -> None:
            try:
                kline = parse_kline(message)
            except MalformedKlineError:
                on_malformed("bad_kline")
                return  # not stored: ccxt's cache would keep it
            on_kline(kline)
            super().handle_ohlcv(client, message)

    return TappedBinance(config)


def _guard_decoding(client: Any, on_malformed: Callable[[str], None]) -> None:
    decode_and_dispatch = client.handle_text_or_binary_message

    def guarded(data: Any) -> None:
        try:
            decode_and_dispatch(data)
        except ValueError:  # the JSON decoder's error; the handlers above never raise
            on_malformed("bad_json")

    client.handle_text_or_binary_message = guarded
    client._qs_guarded = True


_closing: set[asyncio.Future[Any]] = set()


def drop_idle_connections(exchange: Any, idle_s: float) -> list[str]:
    """Close every WebSocket connection that received nothing for ``idle_s``; its watchers
    get an error and the next ``watch_ohlcv`` dials a new one. Returns the URLs dropped."""
    from ccxt.base.errors import NetworkError

    now_ms = exchange.milliseconds()
    dropped = []
    for url, client in list((exchange.clients or {}).items()):
        last_ms = getattr(client, "last_message_at", None) or client.connectionStarted or 0
        if now_ms - last_ms < idle_s * 1000:
            continue
        error = NetworkError(f"no message for {idle_s:g} s")
        client.error = error  # ccxt's on_close then knows we closed it, not the server
        client.reject(error)
        closing = asyncio.ensure_future(client.close())
        _closing.add(closing)  # held until done: a task nobody references may be collected
        closing.add_done_callback(_closing.discard)
        exchange.clients.pop(url, None)
        dropped.append(url)
    return dropped
