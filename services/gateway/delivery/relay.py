"""The relay loop: subscribe to the signal channel and hand each message on.

It never dies on its own: a lost Redis connection is retried with capped, jittered
backoff; a message that fails to relay is counted and logged, and the loop goes on.

With a ``batch`` handler, each message read is followed by whatever else is already waiting
in the subscription, up to ``batch.batch_max()`` (1 unless the replica is in overload,
gateway/delivery/overload.py), and they are handed over together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from common.logging import get_logger
from common.redis import REDIS_ERRORS, Backoff
from gateway.metrics import RELAY_LOOP, GatewayMetrics

log = get_logger(__name__)

MessageHandler = Callable[[bytes], Awaitable[None]]
SubscribedHook = Callable[[], Awaitable[None]]


class BatchHandler(Protocol):
    """Takes messages that were waiting together (gateway.delivery.emitter.SignalEmitter)."""

    def batch_max(self) -> int: ...

    async def handle_many(self, raws: list[bytes]) -> None: ...


class Relay:
    def __init__(
        self,
        client: aioredis.Redis,
        channel: str,
        handle: MessageHandler,
        metrics: GatewayMetrics,
        *,
        backoff: Backoff,
        on_subscribed: SubscribedHook | None = None,
        loop: str = RELAY_LOOP,
        batch: BatchHandler | None = None,
    ) -> None:
        self._client = client
        self._batch = batch
        self._on_subscribed = on_subscribed
        self._channel = channel
        self._handle = handle
        self._metrics = metrics
        self._backoff = backoff
        # The ``loop`` label of its Redis metrics; only the signal relay sets ``relay_up``.
        self._loop = loop
        self._subscribed = asyncio.Event()
        self._ever_up = False

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    async def wait_subscribed(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._subscribed.wait(), timeout_s)

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except REDIS_ERRORS as exc:
                self._mark_down()
                delay = self._backoff.next_delay()
                log.warning(
                    "relay_disconnected",
                    loop=self._loop,
                    error=str(exc),
                    retry_in_s=round(delay, 3),
                )
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            if self._on_subscribed is not None:
                # Subscribed first, then catch up: whatever is published meanwhile waits
                # in the subscription, and duplicates of the catch-up are skipped by offset.
                await self._on_subscribed()
            self._mark_up()
            async for message in pubsub.listen():
                if self._batch is None:
                    await self._dispatch(message["data"])
                else:
                    await self._dispatch_many(await self._waiting(pubsub, message["data"]))
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _dispatch(self, data: bytes) -> None:
        try:
            await self._handle(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # One bad message must never stop the stream for everyone else.
            self._metrics.relay_errors.inc()
            log.exception("relay_message_failed", error=str(exc))

    async def _waiting(self, pubsub: Any, first: bytes) -> list[bytes]:
        """``first`` and the messages already read from Redis behind it, without waiting."""
        assert self._batch is not None
        batch, limit = [first], self._batch.batch_max()
        while len(batch) < limit:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0)
            if message is None:
                break
            batch.append(message["data"])
        return batch

    async def _dispatch_many(self, raws: list[bytes]) -> None:
        assert self._batch is not None
        try:
            await self._batch.handle_many(raws)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._metrics.relay_errors.inc()
            log.exception("relay_message_failed", error=str(exc), batch=len(raws))
        if len(raws) > 1:
            # Messages already read are parsed without a suspension, and the transports
            # send only when the loop turn ends: let this batch's writes go before the next.
            await asyncio.sleep(0)

    def _mark_up(self) -> None:
        self._subscribed.set()
        self._backoff.reset()
        if self._loop == RELAY_LOOP:
            self._metrics.relay_up.set(1)
        self._metrics.redis.up(self._loop)
        log.info("relay_subscribed", channel=self._channel, reconnect=self._ever_up)
        self._ever_up = True

    def _mark_down(self) -> None:
        if self._subscribed.is_set() or not self._ever_up:
            self._metrics.redis.down(self._loop)
        self._subscribed.clear()
        if self._loop == RELAY_LOOP:
            self._metrics.relay_up.set(0)
