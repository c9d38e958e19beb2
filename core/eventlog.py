"""A session's durable, append-only event log: one JSON Lines file (where it lives is the
SessionStore's business).

- `append` writes one line straight to the file (no user-space buffer), so a killed process loses
  nothing it appended; `sync` fsyncs (`sync_off_loop` on a worker thread), and the controller
  calls it before each step's actions run, so an OS crash loses at most the step in flight.
- `open` detects a torn last line (a crash mid-write), cuts it, and returns every event.
- The redactor's secrets are masked before a line is written.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from core.errors import SidehandError
from core.events import EVENT_ADAPTER, EVENT_LIST_ADAPTER, NOT_PERSISTED, Event
from core.redaction import FILE_RECORDS, Redactor

log = logging.getLogger(__name__)


class EventLogError(SidehandError):
    """The log cannot be opened or written; the message names the file and line."""


class EventLog:
    def __init__(self, path: Path, fd: int, next_seq: int, redactor: Redactor | None = None) -> None:
        self.path = path
        self._fd = fd
        self.next_seq = next_seq
        self.redactor = redactor or Redactor()  # the session's: it masks what it emits too
        self._dirty = False

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, redactor: Redactor | None = None) -> EventLog:
        """A new, empty log at `path` (which must not exist)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        return cls(path, fd, 0, redactor)

    @classmethod
    def open(cls, path: Path, redactor: Redactor | None = None) -> tuple[EventLog, list[Event]]:
        """Open an existing log for appending, after cutting a torn last line."""
        events = read_events(path, repair=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        next_seq = events[-1].seq + 1 if events else 0
        return cls(path, fd, next_seq, redactor), events

    # ---- writing -------------------------------------------------------------------------
    def append(self, event: Event) -> Event:
        """Give `event` the next seq and write it. Returns the stored event."""
        if event.kind in NOT_PERSISTED:
            raise EventLogError(f"{event.kind} events are streamed, never persisted")
        stored = event.model_copy(update={"seq": self.next_seq})
        line = stored.model_dump_json()
        data = ((line if event.kind in FILE_RECORDS else self.redactor(line)) + "\n").encode()
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # only on a full disk; never leave half a line behind
                raise OSError(f"short write ({written} of {len(data)} bytes)")
        except OSError as exc:
            raise EventLogError(f"cannot write to {self.path}: {exc}") from exc
        self.next_seq += 1
        self._dirty = True
        return stored

    def sync(self) -> None:
        """Make every appended event durable (fsync). Cheap when nothing changed."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    async def sync_off_loop(self, first: Callable[[], None] | None = None) -> None:
        """`sync` on a worker thread: an fsync can take tens of milliseconds on a busy disk, and the
        event loop serves other sessions and requests meanwhile. Events appended while it runs
        are left dirty for the next sync. `first` runs on that thread before the log's fsync
        (what the events refer to becomes durable before they do)."""
        if self._dirty:
            self._dirty = False
            try:
                await asyncio.to_thread(_fsync_after, first, self._fd)
            except BaseException:
                self._dirty = True
                raise

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1


def _fsync_after(first: Callable[[], None] | None, fd: int) -> None:
    if first is not None:
        first()
    os.fsync(fd)


def read_events(path: Path, *, repair: bool = False) -> list[Event]:
    """Every event in the log at `path`. A torn or unparsable LAST line is a crash mid-write: with
    `repair` it is cut from the file, otherwise ignored. A bad line anywhere else is an error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise EventLogError(f"no event log at {path}") from exc
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    torn = bool(tail)
    try:
        events = EVENT_LIST_ADAPTER.validate_json(b"[" + b",".join(lines) + b"]") if lines else []
    except ValidationError:
        events, torn = _parse_lines(path, lines)
    if torn:
        good = sum(len(line) + 1 for line in lines[: len(events)])
        log.warning("%s: cut a torn last line at byte %d (a crash mid-write)", path, good)
        if repair:
            with path.open("r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
    return events


def _parse_lines(path: Path, lines: list[bytes]) -> tuple[list[Event], bool]:
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        try:
            events.append(EVENT_ADAPTER.validate_json(line))
        except ValidationError as exc:
            if number == len(lines):
                return events, True
            raise EventLogError(f"{path}:{number}: not a valid event ({exc.errors()[0]['msg']})") from exc
    return events, False
