"""The delivery loop of one destination: serial, in stream order, at least once.

Each entry is settled before the next is looked at: delivered (the destination accepted
it, then ``XACK``), filtered (not for this destination, ``XACK``), or dead-lettered (a
permanent refusal, or ``max_attempts`` failed attempts: recorded and ``XACK``ed in one
step). Between attempts: capped, jittered backoff (a receiver's ``Retry-After`` is a
floor), the circuit breaker, the rate limit. Nothing is acknowledged that was not
settled, so whatever a crash or a stop interrupts is delivered again by the next holder,
with the same idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson

from common.constants import DEFAULT_MAX_MESSAGE_BYTES, OFFSET_FIELD, history_epoch_key
from common.logging import get_logger
from common.redis import REDIS_ERRORS, Backoff, raise_if_cancelling
from common.schema import SignalRejected, parse_signal
from notifier.consumer import Entry, StreamConsumer, is_missing_group
from notifier.deadletters import DeadLetter, DeadLetters
from notifier.destinations.base import Delivery, DeliveryError, Destination
from notifier.health import LoopHealth
from notifier.metrics import NotifierMetrics
from notifier.policy import CircuitBreaker, RateLimiter, backoff_delay

log = get_logger(__name__)

#: A send gets the destination's own timeout plus this before the loop gives up on it.
SEND_TIMEOUT_MARGIN_S = 5.0


class Stopping(Exception):
    """The worker was asked to stop while a message waited for its next attempt."""


class Retake(Exception):
    """The lease was lost and regained: take over again before the next entry."""


#: What a single entry's handling lets through to the loop (stop, reconnect).
PASS_THROUGH: tuple[type[Exception], ...] = (Stopping, Retake, *REDIS_ERRORS)


@dataclass
class Settled:
    """What was decided for an entry whose acknowledgement Redis did not confirm: applied
    again when the entry comes back, instead of delivering it again."""

    letter: DeadLetter | None = None


class DestinationWorker:
    def __init__(
        self,
        destination: Destination,
        consumer: StreamConsumer,
        dead_letters: DeadLetters,
        metrics: NotifierMetrics,
        health: LoopHealth,
        *,
        redis_backoff_max_s: float,
        max_entry_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.destination = destination
        self.config = destination.config
        self.name = self.config.name
        self.consumer = consumer
        self.dead_letters = dead_letters
        self.m = metrics.of(self.name)
        self.health = health
        self.redis_backoff_max_s = redis_backoff_max_s
        self.max_entry_bytes = max_entry_bytes
        self.breaker = CircuitBreaker(self.config.circuit_failures, self.config.circuit_open_s)
        self.limiter = RateLimiter(self.config.rate_per_s)
        #: Set to stop after the message in flight (its current attempt).
        self.stopping = asyncio.Event()
        #: Set when the lease was regained: claim again after the message in flight.
        self.retake = False
        # Kept on the consumer, which outlives this worker: a worker stopped by a lease
        # change must not make its successor deliver again what Redis did not confirm.
        self._settled: dict[str, Settled] = consumer.unconfirmed
        self._epoch: str | None = None

    async def run(self) -> None:
        """Deliver until ``stopping``; Redis failures back off and resume."""
        backoff = Backoff(max_s=self.redis_backoff_max_s)
        taken_over = False
        while not self.stopping.is_set():
            try:
                if not taken_over:
                    await self.consumer.ensure_group()
                    await self.consumer.take_over(self.stopping)
                    taken_over = True
                    gone, self.consumer.deleted_claimed = self.consumer.deleted_claimed, 0
                    self.m.bad_entries["trimmed"].inc(gone)
                entries = await self.consumer.read()
                self.health.up(self.name)
                backoff.reset()
                await self._handle_batch(entries)
            except asyncio.CancelledError:
                raise
            except Stopping:
                break
            except Retake:
                # Another holder may have come and gone in between: claim what it left
                # pending before reading on, so order holds.
                taken_over = False
                self.consumer.reread_pending()
            except REDIS_ERRORS as exc:
                raise_if_cancelling()
                self.health.down(self.name, exc)
                if is_missing_group_error(exc):
                    taken_over = False  # Redis lost the group: recreate it after our last entry
                self.consumer.reread_pending()
                await self._pause(backoff.next_delay())
            except Exception:
                # A bug must not stop the destination for good: log, back off, go on.
                log.exception("delivery_loop_failed", destination=self.name)
                self.consumer.reread_pending()
                await self._pause(backoff.next_delay())
        self.m.circuit_state.set(0)

    async def _pause(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), delay_s)

    async def _handle_batch(self, entries: list[Entry]) -> None:
        if entries:
            # The offset a receiver sees is the history position clients know (E:ms-seq).
            epoch = await self.consumer.redis.hget(
                history_epoch_key(self.consumer.channel), "epoch"
            )
            self._epoch = epoch.decode(errors="replace") if isinstance(epoch, bytes) else None
        for entry in entries:
            if self.stopping.is_set():
                raise Stopping
            if self.retake:
                self.retake = False
                raise Retake
            try:
                await self.handle(entry)
            except PASS_THROUGH:
                raise
            except Exception as exc:
                # A bug on one odd entry must neither stop the destination nor skip the
                # entry silently: it goes to the dead letters, in order, and we go on.
                log.exception("entry_failed", destination=self.name, entry=entry.id)
                await self._dead_letter(entry, {}, f"internal error: {exc!r}", 0)

    async def handle(self, entry: Entry) -> None:
        settled = self._settled.get(entry.id)
        if settled is not None:
            await self._settle(entry.id, settled)
            return
        signal = await self._readable(entry)
        if signal is None:
            return
        if not self.config.filters.matches(signal):
            self.m.filtered.inc()
            await self._settle(entry.id, Settled())
            return
        if OFFSET_FIELD not in signal:
            signal[OFFSET_FIELD] = f"{self._epoch}:{entry.id}" if self._epoch else entry.id
        key = str(signal.get("id") or entry.id)
        await self.deliver(entry, Delivery(signal=signal, idempotency_key=key, entry_id=entry.id))

    async def _readable(self, entry: Entry) -> dict[str, Any] | None:
        """The entry's signal, or None once an unusable entry is settled: one gone from
        the stream is skipped; one that breaks the signal contract (common.schema, as
        the gateway applies it) is dead-lettered, so nothing is lost and order goes on."""
        if entry.deleted:
            self.m.bad_entries["trimmed"].inc()
            log.warning("entry_trimmed_before_delivery", destination=self.name, entry=entry.id)
            await self._settle(entry.id, Settled())
            return None
        if entry.data is None:
            reason, detail = "no_data", f"no 'data' field (fields: {', '.join(entry.fields)})"
        else:
            try:
                return parse_signal(entry.data, self.max_entry_bytes)
            except SignalRejected as exc:
                reason, detail = exc.reason.value, exc.detail
        self.m.bad_entries[reason].inc()
        log.warning(
            "entry_malformed", destination=self.name, entry=entry.id, reason=reason, error=detail
        )
        await self._dead_letter(entry, {}, f"malformed history entry: {reason}: {detail}", 0)
        return None

    async def deliver(self, entry: Entry, delivery: Delivery) -> None:
        """Attempt until accepted, refused for good, or out of attempts."""
        attempt = 1
        while True:
            await self._pause_or_stop(self.breaker.wait_s())
            self._show_circuit()
            await self._pause_or_stop(self.limiter.reserve())
            error = await self._attempt(replace(delivery, attempt=attempt))
            if error is None:
                self.breaker.success()
                self._show_circuit()
                self._observe_delivered(entry.id)
                await self._settle(entry.id, Settled())
                return
            self.m.failed.inc()
            if error.permanent:
                self.breaker.success()  # the receiver answered: it is up
                await self._dead_letter(entry, delivery.signal, str(error), attempt)
                return
            self.breaker.failure()
            self._show_circuit()
            if attempt >= self.config.max_attempts:
                await self._dead_letter(entry, delivery.signal, str(error), attempt)
                return
            delay = backoff_delay(
                attempt,
                self.config.backoff_initial_s,
                self.config.backoff_max_s,
                error.retry_after_s,
            )
            log.warning(
                "delivery_retry",
                destination=self.name,
                entry=entry.id,
                attempt=attempt,
                retry_in_s=round(delay, 3),
                retry_after_s=error.retry_after_s,
                circuit=self.breaker.state.name.lower(),
                error=str(error),
            )
            attempt += 1
            self.m.retries.inc()
            await self._pause_or_stop(delay)

    async def _attempt(self, delivery: Delivery) -> DeliveryError | None:
        try:
            await asyncio.wait_for(
                self.destination.send(delivery), self.config.timeout_s + SEND_TIMEOUT_MARGIN_S
            )
        except DeliveryError as exc:
            return exc
        except TimeoutError:
            return DeliveryError(f"no answer within {self.config.timeout_s} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a destination bug: a failed attempt, not a dead loop
            log.exception("destination_failed", destination=self.name)
            return DeliveryError(f"{type(exc).__name__}: {exc}")
        return None

    async def _pause_or_stop(self, delay_s: float) -> None:
        if delay_s > 0:
            await self._pause(delay_s)
        if self.stopping.is_set():
            raise Stopping

    def _show_circuit(self) -> None:
        self.m.circuit_state.set(int(self.breaker.state))

    def _observe_delivered(self, entry_id: str) -> None:
        self.m.delivered.inc()
        published_ms = int(entry_id.split("-", 1)[0])
        age_s = max(0.0, time.time() - published_ms / 1000)
        self.m.delivery_seconds.observe(age_s)

    async def _dead_letter(self, entry: Entry, signal: Any, error: str, attempts: int) -> None:
        # The signal as it was offered (with its offset); the raw entry if it was unreadable.
        if signal:
            data = orjson.dumps(signal).decode()
        else:
            # Capped: a huge entry stays in the history stream; its head says what it was.
            raw = entry.data[: self.max_entry_bytes] if entry.data is not None else b""
            data = raw.decode(errors="replace")
        letter = DeadLetter(
            id="",
            destination=self.name,
            entry_id=entry.id,
            idempotency_key=str(signal.get("id") or entry.id) if signal else entry.id,
            data=data,
            error=error,
            attempts=attempts,
            failed_at=time.time(),
        )
        log.error(
            "dead_lettered", destination=self.name, entry=entry.id, attempts=attempts, error=error
        )
        self.m.dead_lettered.inc()
        self.m.dead_letters.inc()
        await self._settle(entry.id, Settled(letter))

    async def _settle(self, entry_id: str, settled: Settled) -> None:
        # Remembered until Redis confirms, so a retry after a lost connection settles it
        # the same way rather than delivering it again.
        self._settled[entry_id] = settled
        if settled.letter is None:
            await self.consumer.ack(entry_id)
        else:
            await self.dead_letters.record_and_ack(
                self.consumer.stream, self.consumer.group, settled.letter
            )
            self.consumer.last_id = entry_id
        del self._settled[entry_id]


def is_missing_group_error(exc: BaseException) -> bool:
    from redis.exceptions import ResponseError

    return isinstance(exc, ResponseError) and is_missing_group(exc)
