"""Loopback servers that record what the notifier sends them: HTTP and SMTP.

HTTP (``HttpReceiver``): a threaded ``http.server`` on 127.0.0.1 and a free port; it works
the same from sync and async tests, whatever the event loop does::

    with HttpReceiver() as rx:                     # started; stopped on exit (or rx.stop())
        url = rx.url + "/hook"                     # "http://127.0.0.1:<port>/hook"
        rx.script(Reply(503), Reply.rate_limited(2))   # the next answers, in order...
        rx.default = Reply(200)                    # ...then this one, for every request after
        rx.respond_with(lambda req: Reply(503))    # or decide per request (an outage: check
                                                   # the time in it); a script still goes first
        ...
        rx.wait_for(3, timeout_s=10)               # blocks until 3 requests arrived
        await rx.wait_for_async(3, timeout_s=10)   # the same from a coroutine
        req = rx.requests[0]                       # Recorded: method, path, query, headers
        req.json(), req.body, req.headers["idempotency-key"]   # (header names lower-case)

``Reply(status, body=b"", headers={}, delay_s=0.0, json=None)``; ``delay_s`` holds the answer
back (a client timeout). Every request is recorded, including those answered with an error;
``rx.answered`` lists the (request, reply) pairs in order. Stand-ins for the chat APIs
answer as those APIs document: ``Reply.slack_ok()`` (200 "ok"), ``Reply.discord_ok()`` (204),
``Reply.telegram_ok(message_id)`` (200 ``{"ok": true, "result": {...}}``), and their 429s
``Reply.rate_limited(s)`` (Retry-After header), ``Reply.discord_rate_limited(s)`` (JSON
``retry_after`` and the header), ``Reply.telegram_rate_limited(s)`` (``ok: false``,
``parameters.retry_after``). ``tests.support.chat_apis`` has responders that check a request
the way Slack, Discord and Telegram do and answer as they would:
``HttpReceiver(responder=telegram_api(TOKEN))``.

SMTP (``SmtpReceiver``): aiosmtpd in its own thread with STARTTLS (a self-signed certificate
made on the spot with ``cryptography``; ``rx.ca_file`` is the file a client trusts) and
AUTH PLAIN/LOGIN against ``users``; TLS and auth are required before mail. Each accepted
message is a ``Mail`` (mail_from, rcpt_tos, content, message(), tls, auth_user).
``rx.reject_data = (451, "4.3.0 try later")`` answers DATA with that code instead;
``SmtpReceiver(implicit_tls=True)`` speaks TLS from the first byte (port 465 style).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

# The SMTP half lives in its own module to keep this one short; import both from here.
from tests.support.receivers_smtp import Mail, SmtpReceiver


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-case; a repeated header keeps its last value
    body: bytes
    received_at: float  # time.time()

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    json: Any = None

    def payload(self) -> tuple[bytes, dict[str, str]]:
        if self.json is None:
            return self.body, self.headers
        return orjson.dumps(self.json), {"Content-Type": "application/json", **self.headers}

    @classmethod
    def rate_limited(cls, retry_after: str | float) -> Reply:
        return cls(429, b"rate limited", {"Retry-After": str(retry_after)})

    @classmethod
    def slack_ok(cls) -> Reply:
        return cls(200, b"ok", {"Content-Type": "text/plain"})

    @classmethod
    def discord_ok(cls) -> Reply:
        return cls(204)

    @classmethod
    def discord_rate_limited(cls, retry_after: float) -> Reply:
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        # Discord's header is whole seconds, rounded up; the body has the exact value.
        headers = {"Retry-After": str(math.ceil(retry_after))}
        return cls(429, headers=headers, json={**body, "global": False})

    @classmethod
    def telegram_ok(cls, message_id: int = 1) -> Reply:
        return cls(200, json={"ok": True, "result": {"message_id": message_id}})

    @classmethod
    def telegram_rate_limited(cls, retry_after: int) -> Reply:
        return cls(
            429,
            json={
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            },
        )

    @classmethod
    def telegram_error(cls, code: int, description: str) -> Reply:
        return cls(code, json={"ok": False, "error_code": code, "description": description})


class HttpReceiver:
    """A recording HTTP server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        default: Reply | None = None,
        responder: Callable[[Recorded], Reply] | None = None,
    ) -> None:
        self.default = default or Reply(200)
        self.requests: list[Recorded] = []
        self.answered: list[tuple[Recorded, Reply]] = []
        self._script: list[Reply] = []
        self._responder = responder
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order, then with ``default`` again."""
        with self._changed:
            self._script.extend(replies)

    def respond_with(self, responder: Callable[[Recorded], Reply] | None) -> None:
        """Answer each request with ``responder(request)`` (after any script); None: default."""
        self._responder = responder

    def start(self) -> HttpReceiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Recorded]:
        """Block until ``count`` requests were recorded; AssertionError on timeout."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise AssertionError(
                    f"{len(self.requests)} requests after {timeout_s}s, not {count}"
                )
            return list(self.requests)

    async def wait_for_async(self, count: int, timeout_s: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.requests)} requests after {timeout_s}s, not {count}"
                )
            await asyncio.sleep(0.01)
        return list(self.requests)

    def _record(self, request: Recorded) -> Reply:
        with self._changed:
            scripted = self._script.pop(0) if self._script else None
        responder = self._responder
        if scripted is not None:
            reply = scripted
        elif responder is not None:
            reply = responder(request)
        else:
            reply = self.default
        with self._changed:
            self.requests.append(request)
            self.answered.append((request, reply))
            self._changed.notify_all()
        return reply


def _handler_for(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real hooks answer httpx
        # Headers and body go out in two writes; with Nagle on, the second waits for the
        # client's delayed ACK (40 ms), which would be the test server's latency, not ours.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Recorded(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                received_at=time.time(),
            )
            reply = receiver._record(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            payload, headers = reply.payload()
            # A client that gave up (timeout) leaves a closed socket: nothing to report.
            with contextlib.suppress(OSError):
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        do_POST = do_GET = do_PUT = _serve  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the recorded requests are the log

        def handle(self) -> None:
            # A reset connection must not become an unhandled thread exception (pytest
            # turns those into test errors).
            with contextlib.suppress(OSError):
                super().handle()

    return Handler


__all__ = ["HttpReceiver", "Mail", "Recorded", "Reply", "SmtpReceiver"]
