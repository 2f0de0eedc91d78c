"""The notifier's Prometheus metrics (names fixed by the contract the dashboard and alerts
read; docs/notifier.md#metrics).

Gauges about a destination's stream position (lag, dead-letter entries) are the same
value on every replica: aggregate them with ``max``. Circuit state is set by the replica
that delivers the destination and 0 elsewhere: ``max`` again.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.metrics import PREFIX, RedisLoopMetrics, add_service_collectors

LEASE_LOOP = "leases"
DELIVERY_LOOP = "delivery"
STATS_LOOP = "stats"
P = f"{PREFIX}_notifier"
OUTCOMES = ("delivered", "failed", "dead_lettered", "filtered")
#: Why a history entry could not be delivered as it was: common.schema's reject reasons
#: (dead-lettered), no ``data`` field (dead-lettered), gone from the stream (skipped).
BAD_ENTRY_REASONS = ("too_large", "not_json", "not_object", "invalid", "no_data", "trimmed")
# From the signal's history entry to the receiver's 2xx: one HTTP round trip when all is
# well, minutes after an outage.
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry, destinations: Iterable[str] = ()) -> None:
        self.registry = registry
        add_service_collectors(registry, "notifier")
        self.redis = RedisLoopMetrics(registry, (LEASE_LOOP, DELIVERY_LOOP, STATS_LOOP))
        labels = ["destination"]
        self.deliveries = Counter(
            f"{P}_deliveries",
            "Messages by outcome (failed: one failed attempt; filtered: not for this destination).",
            ["destination", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            f"{P}_retries", "Attempts after the first.", labels, registry=registry
        )
        self.dead_letters = Counter(
            f"{P}_dead_letters", "Messages sent to the dead letters.", labels, registry=registry
        )
        self.bad_entries = Counter(
            f"{P}_bad_entries",
            "History entries not deliverable as they were: malformed (dead-lettered) or "
            "trimmed before delivery (skipped), by reason.",
            ["destination", "reason"],
            registry=registry,
        )
        self.dead_letter_entries = Gauge(
            f"{P}_dead_letter_entries", "Entries in the dead-letter stream.", registry=registry
        )
        self.lag_entries = Gauge(
            f"{P}_lag_entries",
            "Stream entries not yet delivered (group lag plus pending).",
            labels,
            registry=registry,
        )
        self.lag_seconds = Gauge(
            f"{P}_lag_seconds",
            "Age of the oldest undelivered entry, 0 when none.",
            labels,
            registry=registry,
        )
        self.circuit_state = Gauge(
            f"{P}_circuit_state", "0 closed, 1 half-open, 2 open.", labels, registry=registry
        )
        self.delivery_seconds = Histogram(
            f"{P}_delivery_seconds",
            "From the signal's history entry to the destination's acceptance.",
            labels,
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.destinations_owned = Gauge(
            f"{P}_destinations_owned", "Destinations this replica delivers.", registry=registry
        )
        for name in destinations:
            self.declare(name)

    def declare(self, destination: str) -> None:
        """Create a destination's series at zero, so dashboards see zeros, not gaps."""
        for outcome in OUTCOMES:
            self.deliveries.labels(destination, outcome)
        for reason in BAD_ENTRY_REASONS:
            self.bad_entries.labels(destination, reason)
        for family in (self.retries, self.dead_letters, self.delivery_seconds):
            family.labels(destination)
        for gauge in (self.lag_entries, self.lag_seconds, self.circuit_state):
            gauge.labels(destination).set(0)

    def of(self, destination: str) -> DestinationMetrics:
        return DestinationMetrics(self, destination)

    def total(self, name: str) -> float:
        return sum(
            s.value for metric in self.registry.collect() for s in metric.samples if s.name == name
        )


class DestinationMetrics:
    """One destination's series, looked up once (``labels()`` is not free per message)."""

    def __init__(self, metrics: NotifierMetrics, name: str) -> None:
        outcome = {o: metrics.deliveries.labels(name, o) for o in OUTCOMES}
        self.delivered = outcome["delivered"]
        self.failed = outcome["failed"]
        self.dead_lettered = outcome["dead_lettered"]
        self.filtered = outcome["filtered"]
        self.retries = metrics.retries.labels(name)
        self.bad_entries = {r: metrics.bad_entries.labels(name, r) for r in BAD_ENTRY_REASONS}
        self.dead_letters = metrics.dead_letters.labels(name)
        self.circuit_state = metrics.circuit_state.labels(name)
        self.delivery_seconds = metrics.delivery_seconds.labels(name)
