"""The gateway's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.metrics import PREFIX, RedisLoopMetrics, add_service_collectors
from common.schema import RejectReason
from gateway.clients.auth import AuthFailure

RELAY_LOOP = "relay"
#: The loop relaying closed bars (``new_bar``); not part of readiness.
BARS_LOOP = "bars"
P = f"{PREFIX}_gateway"

# Sub-millisecond to seconds: a healthy relay sits in the low milliseconds.
#: Why a client frame or request was refused before Engine.IO (metric label values).
FRAME_REFUSAL_REASONS = (
    "malformed",
    "binary",
    "too_large",
    "invalid_utf8",
    "bad_handshake",
    "unknown_session",
)
#: Outcomes of POST /api/signals (metric label values).
API_PUBLISH_OUTCOMES = (
    "published",
    "duplicate",
    "invalid",
    "unauthorized",
    "rate_limited",
    "unavailable",
)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        add_service_collectors(registry, "gateway")
        self.redis = RedisLoopMetrics(registry, (RELAY_LOOP, BARS_LOOP))
        self.connected_clients = Gauge(
            f"{P}_connected_clients",
            "Socket.IO clients connected to this replica.",
            registry=registry,
        )
        self.signals_received = Counter(
            f"{P}_signals_received", "Messages read from the signal channel.", registry=registry
        )
        self.signals_emitted = Counter(
            f"{P}_signals_emitted", "Signals emitted to this replica's clients.", registry=registry
        )
        self.signals_rejected = Counter(
            f"{P}_signals_rejected",
            "Messages not relayed, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in RejectReason:
            self.signals_rejected.labels(reason.value)
        self.relay_errors = Counter(
            f"{P}_relay_errors", "Unexpected errors while relaying one message.", registry=registry
        )
        self.bars_emitted = Counter(
            f"{P}_bars_emitted", "Closed bars emitted to this replica's clients.", registry=registry
        )
        self.bars_rejected = Counter(
            f"{P}_bars_rejected",
            "Messages on the bars channel not relayed (not a JSON object with a symbol).",
            registry=registry,
        )
        self.relay_latency = Histogram(
            f"{P}_relay_latency_seconds",
            "Signal timestamp (ts) to emit, for signals that carry one.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.relay_up = Gauge(
            f"{P}_relay_up",
            "1 while the relay is subscribed to the signal channel.",
            registry=registry,
        )
        self.signals_skipped = Counter(
            f"{P}_signals_skipped",
            "Signals not emitted because their offset was already emitted (backfill overlap).",
            registry=registry,
        )
        self.backfilled = Counter(
            f"{P}_backfilled_signals",
            "Signals emitted from history after the relay reconnected.",
            registry=registry,
        )
        self.backfill_gaps = Counter(
            f"{P}_backfill_incomplete",
            "Backfills that could not be complete: history was trimmed past the last offset.",
            registry=registry,
        )
        self.recovery_requests = Counter(
            f"{P}_recovery_requests",
            "Clients that connected with a resume offset.",
            registry=registry,
        )
        self.recovered = Counter(
            f"{P}_recovered_signals", "Signals re-sent to resuming clients.", registry=registry
        )
        self.recovery_incomplete = Counter(
            f"{P}_recovery_incomplete",
            "Resumes whose offset was older than the retained history (client must resync).",
            registry=registry,
        )
        self.history_epoch_changes = Counter(
            f"{P}_history_epoch_changes",
            "History epoch changes this replica noticed: Redis lost the history, so resumes "
            "from before are answered incomplete (docs/delivery.md).",
            registry=registry,
        )
        self.history_length = Gauge(
            f"{PREFIX}_history_length",
            "Entries in the signal history stream. Cluster-wide: every replica exports the "
            "same value, so aggregate with max, never sum.",
            registry=registry,
        )
        self.history_oldest_age = Gauge(
            f"{PREFIX}_history_oldest_age_seconds",
            "Age of the oldest history entry. Cluster-wide, like qs_history_length: use max.",
            registry=registry,
        )
        self.auth_refused = Counter(
            f"{P}_auth_refused",
            "Tokens refused (connect or refresh), by reason.",
            ["reason"],
            registry=registry,
        )
        for failure in AuthFailure:
            self.auth_refused.labels(failure.value)
        self.auth_expired = Counter(
            f"{P}_auth_expired",
            "Clients disconnected because their token expired.",
            registry=registry,
        )
        self.subscribe_refused = Counter(
            f"{P}_subscribe_refused",
            "Subscriptions refused: symbols outside the token's claims.",
            registry=registry,
        )
        self.slow_clients = Counter(
            f"{P}_slow_clients_dropped",
            "Clients disconnected because their outgoing queue passed CLIENT_QUEUE_MAX.",
            registry=registry,
        )
        self.deliveries = Counter(
            f"{P}_deliveries",
            "Signals handed to clients by the fan-out, by path: written straight to the "
            "WebSocket, or queued for the socket's writer (long-polling, or a busy socket).",
            ["path"],
            registry=registry,
        )
        self._delivered_direct = self.deliveries.labels("direct")
        self._delivered_queued = self.deliveries.labels("queued")
        self.broadcasts = Counter(
            f"{P}_broadcasts", "Admin broadcasts accepted.", registry=registry
        )
        self.draining = Gauge(f"{P}_draining", "1 once shutdown has started.", registry=registry)
        # Reasons are fixed words, never client input (an event name would be unbounded).
        self.client_events_refused = Counter(
            f"{P}_client_events_refused",
            "Client events refused, by reason (rate_limited, unknown_event).",
            ["reason"],
            registry=registry,
        )
        self.flood_disconnects = Counter(
            f"{P}_flood_disconnects",
            "Clients disconnected for sending events faster than the rate limit, persistently.",
            registry=registry,
        )
        self.client_frames_refused = Counter(
            f"{P}_client_frames_refused",
            "Client frames refused before Engine.IO, by reason (malformed, binary, too_large, "
            "invalid_utf8, bad_handshake: a new session with an unknown protocol or transport, "
            "unknown_session: a request naming a session this replica does not hold).",
            ["reason"],
            registry=registry,
        )
        self.connections_refused = Counter(
            f"{P}_connections_refused",
            "Connections refused at the Engine.IO handshake, by reason (max_connections).",
            ["reason"],
            registry=registry,
        )
        for event_reason in ("rate_limited", "unknown_event"):
            self.client_events_refused.labels(event_reason)
        for frame_reason in FRAME_REFUSAL_REASONS:
            self.client_frames_refused.labels(frame_reason)
        self.connections_refused.labels("max_connections")

        self._add_api_metrics(registry)
        self._add_sse_metrics(registry)
        self._add_overload_metrics(registry)

    def _add_overload_metrics(self, registry: CollectorRegistry) -> None:
        """What the fan-out does when it cannot keep up (docs/delivery.md, overload)."""
        self.fanout_age = Histogram(
            f"{P}_fanout_age_seconds",
            "Age of a live signal when its fan-out starts: now minus its history offset's time "
            "(Redis and the relay ahead of it).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.overloaded = Gauge(
            f"{P}_overloaded",
            "1 while signals reach the fan-out older than OVERLOAD_AGE_MS (coalescing).",
            registry=registry,
        )
        self.overload_episodes = Counter(
            f"{P}_overload_episodes",
            "Times this replica entered overload.",
            registry=registry,
        )
        self.coalesced = Counter(
            f"{P}_overload_coalesced_signals",
            "Signals fanned out in a coalesced batch (one write per client for the batch).",
            registry=registry,
        )
        self.latest_only_dropped = Counter(
            f"{P}_overload_dropped_deliveries",
            "Deliveries left out in overload for latest_only clients (an older signal of the "
            "same symbol and strategy in the same batch).",
            registry=registry,
        )

    def _add_api_metrics(self, registry: CollectorRegistry) -> None:
        """The HTTP publish and history APIs (docs/api.md)."""
        self.api_published = Counter(
            f"{P}_api_published",
            "POST /api/signals outcomes: published and duplicate count signals; invalid, "
            "unauthorized, rate_limited and unavailable count refused requests.",
            ["outcome"],
            registry=registry,
        )
        for outcome in API_PUBLISH_OUTCOMES:
            self.api_published.labels(outcome)
        self.api_publish_latency = Histogram(
            f"{P}_api_publish_seconds",
            "POST /api/signals handling time, from the request to the answer (whole batch).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.api_history_scanned = Counter(
            f"{P}_api_history_scanned",
            "History entries GET /api/signals read while filtering.",
            registry=registry,
        )

    def _add_sse_metrics(self, registry: CollectorRegistry) -> None:
        """GET /api/signals/stream (Server-Sent Events, gateway/delivery/sse.py)."""
        self.sse_clients = Gauge(
            f"{P}_sse_clients",
            "SSE streams open on this replica (catching up or live).",
            registry=registry,
        )
        self.sse_deliveries = Counter(
            f"{P}_sse_deliveries",
            "Live signals queued to SSE clients (one per client per signal).",
            registry=registry,
        )
        self.sse_dropped = Counter(
            f"{P}_sse_clients_dropped",
            "SSE clients whose stream was ended because their queue passed SSE_CLIENT_QUEUE_MAX.",
            registry=registry,
        )

    def count_deliveries(self, direct: int, queued: int) -> None:
        """Once per signal, not per recipient: the fan-out loop stays free of metric calls."""
        if direct:
            self._delivered_direct.inc(direct)
        if queued:
            self._delivered_queued.inc(queued)
