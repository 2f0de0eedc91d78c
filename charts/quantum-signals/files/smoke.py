"""`helm test` smoke check, run by the gateway image (stdlib + the `websockets` it ships).

1. GET /readyz answers 200 (relay subscribed to Redis, not draining), at READYZ_URL when
   the probes live on the internal METRICS_PORT.
2. GET /api/signals/latest answers 200 with a "signals" list (the gateway reads Redis).
3. A real Socket.IO connection: Engine.IO open packet, namespace connect ("40"), and
   the server's connect acknowledgement, over WebSocket (or long-polling when the gateway
   only allows polling).
4. Optionally waits WAIT_FOR_SIGNAL_S seconds for a live "new_signal" event.

Settings (environment): GATEWAY_URL (http://host:port), READYZ_URL (default
GATEWAY_URL/readyz), TRANSPORTS, WAIT_FOR_SIGNAL_S.
Exit status 0 means every step passed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from typing import Any

TIMEOUT_S = 10.0
SIGNAL_PREFIX = '42["new_signal",'


def step(name: str, detail: str) -> None:
    print(f"ok   {name}: {detail}", flush=True)


def fail(name: str, detail: str) -> None:
    print(f"FAIL {name}: {detail}", flush=True)
    raise SystemExit(1)


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "text/plain;charset=UTF-8")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as err:
        return int(err.code), bytes(err.read())


def check_http(base: str, readyz_url: str) -> None:
    status, body = http("GET", readyz_url)
    if status != 200:
        fail("readyz", f"HTTP {status} {body[:200]!r}")
    step("readyz", body.decode()[:200])
    status, body = http("GET", f"{base}/api/signals/latest?limit=1")
    if status != 200 or not isinstance(json.loads(body).get("signals"), list):
        fail("latest", f"HTTP {status} {body[:200]!r}")
    step("latest", f"{len(json.loads(body)['signals'])} signal(s) in history")


def websocket_session(base: str, wait_s: float) -> None:
    from websockets.sync.client import connect

    url = base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    with connect(url, open_timeout=TIMEOUT_S, close_timeout=2) as ws:
        opening = str(ws.recv(timeout=TIMEOUT_S))
        if not opening.startswith("0{"):
            fail("engine.io open", opening[:200])
        step("engine.io open", opening[:120])
        ws.send("40")
        ack = _next_packet(ws, TIMEOUT_S, lambda p: p.startswith(("40", "44")))
        if not ack.startswith("40{"):
            fail("socket.io connect", ack[:200])
        step("socket.io connect", ack[:120])
        if wait_s > 0:
            signal = _next_packet(ws, wait_s, lambda p: p.startswith(SIGNAL_PREFIX))
            step("signal", signal[:200])


def _next_packet(ws: Any, timeout_s: float, wanted: Any) -> str:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            packet = str(ws.recv(timeout=left))
        except TimeoutError:
            break
        if packet == "2":  # Engine.IO ping: answer or the server closes the session
            ws.send("3")
        elif wanted(packet):
            return packet
    fail("socket.io", f"no expected packet within {timeout_s}s")
    return ""


def polling_session(base: str) -> None:
    url = f"{base}/socket.io/?EIO=4&transport=polling"
    status, body = http("GET", url)
    if status != 200 or not body.startswith(b"0{"):
        fail("engine.io open", f"HTTP {status} {body[:200]!r}")
    sid = json.loads(body[1:])["sid"]
    step("engine.io open", body.decode()[:120])
    status, body = http("POST", f"{url}&sid={sid}", b"40")
    if status != 200:
        fail("socket.io connect", f"HTTP {status} {body[:200]!r}")
    status, body = http("GET", f"{url}&sid={sid}")
    if status != 200 or b"40{" not in body:
        fail("socket.io connect", f"HTTP {status} {body[:200]!r}")
    step("socket.io connect", body.decode()[:120])


def main() -> None:
    base = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/")
    transports = os.environ.get("TRANSPORTS", "polling,websocket").split(",")
    wait_s = float(os.environ.get("WAIT_FOR_SIGNAL_S", "0"))
    print(f"smoke check of {base} (transports {transports})", flush=True)
    check_http(base, os.environ.get("READYZ_URL") or f"{base}/readyz")
    if "websocket" in transports:
        websocket_session(base, wait_s)
    else:
        polling_session(base)
    print("smoke check passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as exc:
        print(f"FAIL {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
