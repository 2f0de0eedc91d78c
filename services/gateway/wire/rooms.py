"""Which rooms this replica's clients are in, read from python-socketio's room table.

python-socketio keeps ``manager.rooms[namespace][room][sid] = eio_sid`` and offers no public
way to list the rooms of a namespace (``get_rooms`` is per client). Bars need that list
(gateway/delivery/bars.py: the filter rooms are only known at emit time), so the table is
read here, with the assumption "manager rooms[ns] is keyed by room name; an emptied room
leaves it" checked in gateway/wire/compat.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import socketio


def room_names(sio: socketio.AsyncServer, namespace: str) -> Iterable[object]:
    """The names of the rooms in ``namespace`` on this replica (``None`` for the namespace's
    own room, each client's sid, every room a client entered; none left empty).

    A live view, not a copy: iterate it before the next ``await`` (a client joining or
    leaving in between changes it)."""
    table: dict[object, object] = sio.manager.rooms.get(namespace, {})
    return table.keys()
