"""A session's durable, append-only event log: JSON Lines plus a small metadata file.

- `append` writes one line straight to the file (no user-space buffer), so a killed process loses
  nothing it appended; `sync` fsyncs (`sync_off_loop` on a worker thread), and the controller
  calls it before each step's actions run, so an OS crash loses at most the step in flight.
- `open` detects a torn last line (a crash mid-write), cuts it, and returns every event.
- Secrets registered with the log are replaced before a line is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.errors import SidehandError
from core.events import EVENT_ADAPTER, EVENT_LIST_ADAPTER, NOT_PERSISTED, Event

log = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"
META_FILE = "meta.json"
REDACTED = "[redacted]"


class EventLogError(SidehandError):
    """The log cannot be opened or written; the message names the file and line."""


class EventLog:
    def __init__(self, directory: Path, fd: int, next_seq: int, secrets: Iterable[str] = ()) -> None:
        self.directory = directory
        self.path = directory / EVENTS_FILE
        self._fd = fd
        self.next_seq = next_seq
        self._secrets = tuple(s for s in secrets if s)
        self._dirty = False

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, meta: dict[str, Any], secrets: Iterable[str] = ()) -> EventLog:
        directory.mkdir(parents=True, exist_ok=False)
        write_meta(directory, meta)
        fd = os.open(directory / EVENTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(directory)
        return cls(directory, fd, 0, secrets)

    @classmethod
    def open(cls, directory: Path, secrets: Iterable[str] = ()) -> tuple[EventLog, list[Event]]:
        """Open an existing log for appending, after cutting a torn last line."""
        events = read_events(directory, repair=True)
        fd = os.open(directory / EVENTS_FILE, os.O_WRONLY | os.O_APPEND)
        next_seq = events[-1].seq + 1 if events else 0
        return cls(directory, fd, next_seq, secrets), events

    # ---- writing -------------------------------------------------------------------------
    def append(self, event: Event) -> Event:
        """Give `event` the next seq and write it. Returns the stored event."""
        if event.kind in NOT_PERSISTED:
            raise EventLogError(f"{event.kind} events are streamed, never persisted")
        stored = event.model_copy(update={"seq": self.next_seq})
        line = stored.model_dump_json()
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        data = (line + "\n").encode()
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

    async def sync_off_loop(self) -> None:
        """`sync` on a worker thread: an fsync can take tens of milliseconds on a busy disk, and the
        event loop serves other sessions and requests meanwhile. Events appended while it runs
        are left dirty for the next sync."""
        if self._dirty:
            self._dirty = False
            try:
                await asyncio.to_thread(os.fsync, self._fd)
            except BaseException:
                self._dirty = True
                raise

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def fork(self, directory: Path, upto_seq: int, meta: dict[str, Any]) -> EventLog:
        """A new log holding this one's events up to and including `upto_seq`."""
        self.sync()
        kept = [e for e in read_events(self.directory) if e.seq <= upto_seq]
        forked = EventLog.create(directory, meta, self._secrets)
        for event in kept:
            forked.append(event)
        forked.sync()
        return forked


def read_events(directory: Path, *, repair: bool = False) -> list[Event]:
    """Every event in the log. A torn or unparsable LAST line is a crash mid-write: with `repair`
    it is cut from the file, otherwise ignored. A bad line anywhere else is an error."""
    path = directory / EVENTS_FILE
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


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Replace the metadata file atomically."""
    tmp = directory / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, directory / META_FILE)


def read_meta(directory: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise EventLogError(f"cannot read {directory / META_FILE}: {exc}") from exc
    return meta


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
