"""asyncio's Event and Queue parts that cost memory only while someone waits.

Why: an idle connection waits for nothing but its reader, yet ``asyncio.Queue`` builds
three ``collections.deque`` (waiting getters, waiting putters, items) and an ``Event``
with a fourth, and each empty deque is ~600 bytes (a 64-slot block). uvicorn's WebSocket
protocol holds a Queue and an Event per connection, engine.io's socket another Queue:
about 5 KB of empty deques per idle connection (bench/memory_per_conn.py).

- ``LazyEvent``: ``asyncio.Event``'s interface (set, clear, is_set, wait); a real Event
  exists only while a waiter waits.
- ``Inbox``: what uvicorn's protocol uses of its receive queue (put_nowait, get, empty,
  qsize), for one reader at a time (an ASGI app's receive calls).
- ``LazyDeques``: a mixin for an ``asyncio.Queue`` subclass that starts with shared,
  never-appended deques and replaces them before a get/put could wait
  (``gateway.wire.direct.DirectQueue``).

``gateway/wire/compat.py`` checks what these rely on in asyncio and uvicorn by name.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any


class _Shared(collections.deque[Any]):
    """An empty deque shared by many queues: reading is fine, adding is a bug (loud)."""

    def append(self, item: Any) -> None:
        raise RuntimeError("a shared empty deque of gateway.wire.lazy was appended to")

    appendleft = append


#: Shared by every LazyDeques queue until it needs waiters of its own: never appended to
#: (get and put replace it first), only read (``while waiters``) and compared.
NO_WAITERS: collections.deque[Any] = _Shared()
#: Items of a LazyDeques queue that never held one: ``_put`` replaces it first.
NO_ITEMS: collections.deque[Any] = _Shared()


class LazyEvent:
    """``asyncio.Event`` whose waiters' deque exists only while someone waits."""

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: asyncio.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        event, self._event = self._event, None
        if event is not None:
            event.set()  # its waiters hold it until they wake

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> bool:
        if self._flag:
            return True
        if self._event is None:
            self._event = asyncio.Event()
        return await self._event.wait()


class Inbox:
    """A FIFO with one reader: uvicorn's per-connection receive queue, without deques."""

    __slots__ = ("_items", "_waiter", "on_item")

    def __init__(self) -> None:
        self._items: list[Any] = []  # a handful at most: the reader pauses the transport
        self._waiter: asyncio.Future[None] | None = None
        #: Called when an item arrives and no reader waits (a detached app: detach.py).
        self.on_item: Callable[[], None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif self.on_item is not None:
            self.on_item()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("Inbox: a second reader while one waits")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class LazyDeques:
    """For an ``asyncio.Queue`` subclass: no deque of its own until one is needed.

    asyncio.Queue appends to ``_getters`` only in ``get()`` and to ``_putters`` only in
    ``put()``, waits on ``_finished`` only in ``join()``, and touches its items only
    through ``_init``/``_put``/``_get`` and ``len(self._queue)``.
    """

    _getters: collections.deque[Any]
    _putters: collections.deque[Any]
    _queue: collections.deque[Any]
    _finished: Any

    def _lazy_init(self) -> None:
        """Call at the end of ``__init__``: drops what asyncio.Queue.__init__ built."""
        self._getters = self._putters = NO_WAITERS
        finished = LazyEvent()
        finished.set()  # as in asyncio.Queue: no unfinished task yet
        self._finished = finished

    def _init(self, maxsize: int) -> None:
        self._queue = NO_ITEMS

    def _put(self, item: Any) -> None:
        if self._queue is NO_ITEMS:
            self._queue = collections.deque()
        self._queue.append(item)

    def _get(self) -> Any:
        item = self._queue.popleft()
        if not self._queue:
            self._queue = NO_ITEMS  # an idle connection goes back to holding no deque
        return item

    def _own_getters(self) -> None:
        if self._getters is NO_WAITERS:
            self._getters = collections.deque()

    def _own_putters(self) -> None:
        # Only a bounded queue's put() can wait (engine.io's are unbounded).
        if self._putters is NO_WAITERS and self.maxsize > 0:  # type: ignore[attr-defined]
            self._putters = collections.deque()
