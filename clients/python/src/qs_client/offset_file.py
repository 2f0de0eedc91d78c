"""The last offset on disk, replaced atomically so a crash never leaves half a token."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qs_client.offsets import Position, parse_position


class OffsetFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> Position | None:
        """The stored position; None when there is no file yet. ValueError if it is garbage."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        position = parse_position(text)
        if position is None:
            raise ValueError(f"{self.path}: not a history offset: {text[:80]!r}")
        return position

    def save(self, offset: str) -> None:
        # Temp file in the same directory, then rename: os.replace is atomic on POSIX, so
        # a reader (or a restart after a crash) sees the old token or the new one.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(offset + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
