"""Command output that may be huge: kept whole in a file, shown middle-truncated in memory."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO


class OutputCollector:
    """Holds only the head and the tail of the output in memory, so a command that prints
    gigabytes costs the host `limit` bytes, not gigabytes; once the output outgrows `limit`, the
    whole of it streams to `full_path` (if given). Output that fits touches no file: most commands'
    output is short, and creating a file per command would be disk work on the event loop."""

    def __init__(self, limit: int, full_path: Path | None = None) -> None:
        self.limit = limit
        self.full_path = full_path
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._file: BinaryIO | None = None

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        if self._file is not None:
            self._file.write(data)
        elif self.full_path is not None and self.total > self.limit:
            # Nothing was dropped yet (the tail is cut only past 1.5 x limit): head + tail + data
            # is everything so far.
            self.full_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.full_path.open("wb")
            self._file.write(bytes(self._head) + bytes(self._tail) + data)
        half = self.limit // 2
        room = half - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > 2 * half:
                del self._tail[: len(self._tail) - half]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self) -> str:
        """The output to show: whole when it fits, else head + marker + tail."""
        if not self.truncated:
            return (bytes(self._head) + bytes(self._tail)).decode("utf-8", "replace")
        half = self.limit // 2
        tail = bytes(self._tail[-half:]) if half else b""
        cut = self.total - len(self._head) - len(tail)
        where = f"; full output in {self.full_path}" if self.full_path else ""
        return (
            bytes(self._head).decode("utf-8", "replace")
            + f"\n[... {cut} bytes truncated{where} ...]\n"
            + tail.decode("utf-8", "replace")
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
