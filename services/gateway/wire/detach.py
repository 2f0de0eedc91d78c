"""A WebSocket whose ASGI app may return while the connection stays open (``DETACH``).

Why: an ASGI app holds its WebSocket by staying inside ``await app(scope, receive,
send)``: for the gateway that is uvicorn's task with a chain of about a dozen coroutine
frames (proxy headers, the guard, engine.io's request, connect and upgrade handlers, the
session), each keeping its locals (the parsed query, the OPEN packet, the environ) for
as long as the client stays: ~4 KB of an idle connection (bench/memory_per_conn.py).

``DetachableProtocol`` (mixed into ``gateway.wire.direct.DirectSendProtocol``) offers
``scope["extensions"][DETACH]``: the app calls it with a callback and returns; the
protocol then keeps the connection open, calls the callback whenever a message waits in
its receive queue (the app reads it with the same ``receive`` as before, in a task it
starts only then), and the app calls the returned ``end()`` once it is done, which closes
the transport as uvicorn does when an app returns.

``run_asgi`` is uvicorn's own, with one difference: a detached connection is not closed
when the app returns. ``gateway/wire/compat.py`` checks that uvicorn's still reads as
the one copied here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.utils import ClientDisconnected

#: ASGI scope extension: ``detach(on_message) -> (empty, end)``.
DETACH = "quantum_signals.detach"

Detach = Callable[[Callable[[], None]], tuple[Callable[[], bool], Callable[[], None]]]


class DetachableProtocol:
    """Mixin for uvicorn's WebSocketsSansIOProtocol (with ``gateway.wire.lazy.Inbox``)."""

    __slots__ = ("_detached",)
    app: Any
    scope: Any
    queue: Any
    logger: Any
    handshake_complete: bool
    close_timer: Any
    transport: Any
    loop: asyncio.AbstractEventLoop

    def offer_detach(self) -> None:
        """Called by handle_connect once the scope exists."""
        self._detached = False
        self.scope["extensions"][DETACH] = self.detach

    def detach(
        self, on_message: Callable[[], None]
    ) -> tuple[Callable[[], bool], Callable[[], None]]:
        """Keep the connection once the app returns; ``on_message()`` whenever a message
        waits. Returns (whether the receive queue is empty, end)."""
        self._detached = True
        self.queue.on_item = on_message
        if not self.queue.empty():
            self.loop.call_soon(on_message)
        return self.queue.empty, self.end_detached

    def end_detached(self) -> None:
        """The detached app is done: what uvicorn does when an app returns."""
        self.queue.on_item = None
        if self.close_timer is None:
            self.transport.close()

    if TYPE_CHECKING:  # uvicorn's, which the copy below calls (not overridden here)

        def send_500_response(self) -> None: ...

        async def receive(self) -> Any: ...

        async def send(self, message: Any) -> None: ...

    async def run_asgi(self) -> None:
        # uvicorn 0.54's WebSocketsSansIOProtocol.run_asgi, but for the last condition.
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self._detached:
            self.transport.close()
