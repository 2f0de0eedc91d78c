"""Every channel, key, event name and protocol number in one place.

Both services and the tests import these; nothing else spells them out.
"""

from typing import Final

#: Redis Pub/Sub channel that carries signals (the public wire contract).
DEFAULT_CHANNEL: Final = "quantum_signals"

#: Socket.IO namespace of every event (the default one).
NAMESPACE: Final = "/"
#: Socket.IO event carrying one signal to clients.
SIGNAL_EVENT: Final = "new_signal"
#: Socket.IO event carrying an operator message (admin broadcast).
SYSTEM_EVENT: Final = "system_message"
#: Authentication events: server warns before a token expires, then ends the session
#: unless the client sent a fresh token with ``auth_refresh``.
AUTH_REFRESH_EVENT: Final = "auth_refresh"
AUTH_EXPIRING_EVENT: Final = "auth_expiring"
AUTH_EXPIRED_EVENT: Final = "auth_expired"
#: Socket.IO event carrying one closed market bar (from ``bars_channel``) to clients.
BAR_EVENT: Final = "new_bar"
#: Client -> server events narrowing what a client receives.
SUBSCRIBE_EVENT: Final = "subscribe"
UNSUBSCRIBE_EVENT: Final = "unsubscribe"

#: Room every client joins until it subscribes to explicit symbols.
ALL_SIGNALS_ROOM: Final = "all"
SYMBOL_ROOM_PREFIX: Final = "symbol:"

#: Field carrying a signal's history position ("<epoch>:<ms>-<seq>"), the client's resume
#: token (common.offsets).
OFFSET_FIELD: Final = "offset"
#: Server -> client event saying how a resume went.
RECOVERY_EVENT: Final = "recovery"

#: Version of the full signal form the monitor publishes.
SCHEMA_VERSION: Final = 2
#: Messages larger than this are rejected unread.
DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024


def socketio_channel(channel: str) -> str:
    """Channel python-socketio's Redis manager uses between gateway replicas."""
    return f"{channel}:socketio"


def history_key(channel: str) -> str:
    """Redis Stream that keeps the recent signals published on ``channel``."""
    return f"{channel}:history"


def history_epoch_key(channel: str) -> str:
    """Hash (epoch, base, prev) naming the history's current epoch; written only by Lua."""
    return f"{channel}:history:epoch"


def dedupe_key(channel: str, signal_id: str) -> str:
    """Key whose existence means ``signal_id`` was already published."""
    return f"{channel}:seen:{signal_id}"


def scores_key(channel: str, strategy: str, symbol: str) -> str:
    """Hash scoring the last signals of ``strategy`` on ``symbol`` (monitor.scoring)."""
    return f"{channel}:scores:{strategy}:{symbol}"


def scores_index_key(channel: str) -> str:
    """Set of the JSON pairs [strategy, symbol] that have a ``scores_key`` hash."""
    return f"{channel}:scores"


#: Signals per (strategy, symbol) the scorecard covers unless SCORE_WINDOW says otherwise.
DEFAULT_SCORE_WINDOW: Final = 100


def lease_key(channel: str, symbol: str) -> str:
    """Key naming the monitor replica that currently works ``symbol`` (expires unless renewed)."""
    return f"{channel}:lease:{symbol}"


def replicas_key(channel: str) -> str:
    """Sorted set of live monitor replicas (score: expiry in ms) used to compute fair shares."""
    return f"{channel}:replicas"


def bars_key(channel: str, symbol: str) -> str:
    """Recent closed bars of ``symbol``, so a replica taking it over warms up on the same data."""
    return f"{channel}:bars:{symbol}"


def bars_channel(channel: str) -> str:
    """Pub/Sub channel on which the monitor publishes each closed bar as JSON."""
    return f"{channel}:bars"


def monitor_info_key(channel: str) -> str:
    """Hash describing the monitor's market data (source, simulated, timeframe, ...)."""
    return f"{channel}:monitor:info"


def symbol_room(symbol: str) -> str:
    return f"{SYMBOL_ROOM_PREFIX}{symbol}"


#: Prefix of the rooms of filtered clients: ``f:<symbol>:<strategy>:<type>``, ``*`` = any.
FILTER_ROOM_PREFIX: Final = "f:"
FILTER_WILDCARD: Final = "*"


def _room_part(value: str | None) -> str:
    if value is None:
        return FILTER_WILDCARD
    if "\\" in value or ":" in value or value == FILTER_WILDCARD:
        # Escaped, so no symbol or strategy (they may hold ':' or be '*') names another room.
        return value.replace("\\", "\\\\").replace(":", "\\:").replace("*", "\\*")
    return value


def filter_room(symbol: str | None, strategy: str | None, side: str | None) -> str:
    """Room of the clients whose filter is this one combination; None means any value."""
    return f"{FILTER_ROOM_PREFIX}{_room_part(symbol)}:{_room_part(strategy)}:{_room_part(side)}"


def notifier_group(destination: str) -> str:
    """Consumer group on the history stream through which one destination reads signals."""
    return f"notifier:{destination}"


def notifier_lease_key(channel: str, destination: str) -> str:
    """Key naming the notifier replica that currently delivers to ``destination``."""
    return f"{channel}:notifier:lease:{destination}"


def notifier_replicas_key(channel: str) -> str:
    """Sorted set of live notifier replicas (score: expiry in ms), for fair shares."""
    return f"{channel}:notifier:replicas"


def dead_letters_key(channel: str) -> str:
    """Stream of the signals a destination refused for good or after its retry budget."""
    return f"{channel}:notifier:dead"
