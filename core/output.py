"""Command output that may be huge: kept in a file (up to a cap), shown middle-truncated in memory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.redaction import ByteStreamMasker, Redactor


@dataclass(frozen=True)
class OutputFile:
    """Where a command's full output is kept, how much of it at most, and the secrets masked in it."""

    path: Path
    max_bytes: int
    redactor: Redactor | None = None


class OutputBudget:
    """A session's room for full outputs on the host: at most `per_output` bytes each and
    `total` bytes for the session, counting what its folder holds already."""

    def __init__(
        self, directory: Path, per_output: int, total: int, redactor: Redactor | None = None
    ) -> None:
        self.directory = directory
        self.redactor = redactor
        self.per_output = per_output
        self.total = total
        self.used = sum(entry.stat().st_size for entry in os.scandir(directory)) if directory.is_dir() else 0

    def file_for(self, call_id: str) -> OutputFile | None:
        """Where this call's output may go (None: the session's room is spent)."""
        room = min(self.per_output, self.total - self.used)
        path = self.directory / f"{call_id}.txt"
        return OutputFile(path, room, self.redactor) if room > 0 else None

    def spend(self, path: Path | None) -> None:
        if path is not None and path.is_file():
            self.used += path.stat().st_size


class OutputCollector:
    """Holds only the head and the tail of the output in memory, so a command that prints
    gigabytes costs the host `limit` bytes, not gigabytes; once the output outgrows `limit`, the
    whole of it streams to `file` (if given), up to its `max_bytes` (then a note says it was cut).
    Output that fits touches no file: most commands' output is short, and creating a file per
    command would be disk work on the event loop. The file is private to the user (0600)."""

    def __init__(self, limit: int, file: OutputFile | None = None) -> None:
        self.limit = limit
        self.file = file
        self.full_path = file.path if file is not None else None
        self.total = 0
        self._saved = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._file: BinaryIO | None = None
        self._mask = ByteStreamMasker(file.redactor) if file is not None and file.redactor else None

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        if self._file is not None:
            self._save(data)
        elif self.file is not None and self.total > self.limit:
            # Nothing was dropped yet (the tail is cut only past 1.5 x limit): head + tail + data
            # is everything so far.
            self.file.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.file.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            self._file = os.fdopen(fd, "wb")
            self._save(bytes(self._head) + bytes(self._tail) + data)
        half = self.limit // 2
        room = half - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > 2 * half:
                del self._tail[: len(self._tail) - half]

    def _save(self, data: bytes) -> None:
        assert self._file is not None
        assert self.file is not None
        if self._mask is not None:
            data = self._mask.feed(data)
        room = self.file.max_bytes - self._saved
        if room <= 0:
            return
        self._file.write(data[:room])
        self._saved += min(room, len(data))
        if self._saved >= self.file.max_bytes:
            self._file.write(
                f"\n[... the rest was not kept: {self.file.max_bytes} bytes are kept at most ...]\n".encode()
            )

    def retarget(self, file: OutputFile | None) -> None:
        """Keep the full output in `file` instead, if nothing was written to a file yet."""
        if self._file is None and file is not None:
            self.file = file
            self.full_path = file.path

    def follow_on(self) -> OutputFile | None:
        """Where the output that comes after this one may go: beside this one's file, numbered."""
        if self.file is None:
            return None
        path = self.file.path
        numbered = re.fullmatch(r"(.*)\+(\d+)", path.stem)
        stem = f"{numbered[1]}+{int(numbered[2]) + 1}" if numbered else f"{path.stem}+1"
        return OutputFile(path.with_name(stem + path.suffix), self.file.max_bytes)

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
        # Where the whole output is, the caller says: the host path here means nothing to a model.
        return (
            bytes(self._head).decode("utf-8", "replace")
            + f"\n[... {cut} bytes truncated ...]\n"
            + tail.decode("utf-8", "replace")
        )

    def close(self) -> None:
        if self._file is not None:
            if self._mask is not None:
                tail = self._mask.flush()
                self._mask = None
                self._save(tail)
            self._file.close()
            self._file = None
