"""Client frames decoded with the libraries' own decoders, before engine.io sees them.

python-engineio/socketio raise from their decoders on garbage (an empty or non-numeric
packet type, bad JSON, huge ids, deep nesting); here that becomes a metric label.
"""

from __future__ import annotations

import socketio

# Engine.IO v4: packet types a client may send (close, ping, pong, message, upgrade, noop).
CLIENT_EIO_TYPES = frozenset("123456")
EIO_MESSAGE = "4"
RECORD_SEPARATOR = "\x1e"  # between packets of one long-polling payload
#: The Engine.IO protocol revision the server speaks (the ``EIO`` query parameter).
EIO_PROTOCOL = "4"


def frame_problem(text: str | None, data: bytes | None) -> str | None:
    """Why a client frame is refused (a metric label), or None when it is well formed."""
    if text is None:
        # Our clients never send binary (no binary events); refuse it rather than parse it.
        return "binary" if data else "malformed"
    if not text or text[0] not in CLIENT_EIO_TYPES:
        return "malformed"
    return socketio_problem(text[1:]) if text[0] == EIO_MESSAGE else None


def socketio_problem(encoded: str) -> str | None:
    try:
        pkt = socketio.packet.Packet(encoded_packet=encoded)
    except Exception:  # any decoder error (bad JSON, huge ids, deep nesting) is malformed
        return "malformed"
    kind, data = pkt.packet_type, pkt.data
    if kind in (socketio.packet.BINARY_EVENT, socketio.packet.BINARY_ACK):
        return "binary"
    if kind == socketio.packet.EVENT:
        ok = isinstance(data, list) and bool(data) and isinstance(data[0], str)
    elif kind == socketio.packet.ACK:
        ok = isinstance(data, list)
    elif kind == socketio.packet.CONNECT:
        ok = data is None or isinstance(data, dict)
    else:
        ok = kind == socketio.packet.DISCONNECT  # CONNECT_ERROR comes from servers only
    return None if ok else "malformed"


def payload_problem(body: bytes) -> str | None:
    """Check a long-polling POST body: packets separated by the record separator."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return "malformed"
    for part in text.split(RECORD_SEPARATOR):
        if part.startswith("b"):
            return "binary"  # base64 binary packet
        if problem := frame_problem(part, None):
            return problem
    return None


def handshake_problem(query: dict[str, list[str]], transports: tuple[str, ...]) -> str | None:
    """Why a new-session request is refused (a reply body), or None when engine.io may have it."""
    if query.get("EIO") != [EIO_PROTOCOL]:
        return f"unsupported protocol: EIO={EIO_PROTOCOL} expected"
    transport = query.get("transport", [])
    if len(transport) != 1 or transport[0] not in transports:
        return f"unsupported transport: one of {', '.join(transports)} expected"
    return None
