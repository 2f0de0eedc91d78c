"""A local stand-in for Binance's public REST API, serving recorded responses on 127.0.0.1.

The real ccxt client talks to it through ``EXCHANGE_URL``. New candles "close" over time:
each klines request reveals one more recorded candle, so polling sees fresh bars. Symbols
listed in ``failing`` answer HTTP 500, as an exchange having a bad day does.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

RECORDED = Path(__file__).parent / "recorded"
FIRST_VISIBLE = 60


class FakeBinance:
    def __init__(self, failing: set[str] | None = None) -> None:
        self.exchange_info = json.loads((RECORDED / "binance_exchange_info.json").read_text())
        self.klines: dict[str, list[list[Any]]] = json.loads(
            (RECORDED / "binance_klines_1m.json").read_text()
        )
        self.visible = dict.fromkeys(self.klines, FIRST_VISIBLE)
        self.failing = failing or set()
        self.requests: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeBinance:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def klines_response(self, query: dict[str, str]) -> tuple[int, Any]:
        symbol = query["symbol"]
        if symbol in self.failing:
            return 500, {"code": -1000, "msg": "An unknown error occurred while processing."}
        with self._lock:
            shown = self.klines[symbol][: self.visible[symbol]]
            self.visible[symbol] = min(len(self.klines[symbol]), self.visible[symbol] + 1)
        limit = int(query.get("limit", 500))
        if "startTime" in query:  # Binance: the first ``limit`` candles from startTime
            return 200, [k for k in shown if k[0] >= int(query["startTime"])][:limit]
        return 200, shown[-limit:]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with fake._lock:
                    fake.requests.append((time.monotonic(), parts.path))
                if parts.path == "/api/v3/exchangeInfo":
                    status, body = 200, fake.exchange_info
                elif parts.path == "/api/v3/klines":
                    status, body = fake.klines_response(query)
                else:
                    status, body = 404, {"code": -1121, "msg": f"no route {parts.path}"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
