"""Where sessions live: the one owner of the session folder layout.

    <root>/<session id>/meta.json       a small JSON object (workspace, model, title, status, ...)
    <root>/<session id>/events.jsonl    the event log (core.eventlog)
    <root>/<session id>/changes.patch   the last change set, as a patch to read or `git apply`
    <root>/<session id>/outputs/        full outputs of commands whose output was cut
    <root>/.blobs/ab/cdef…              file contents the logs refer to, by sha256 (shared: a fork
                                        refers to its parent's)

No other module spells these names: it asks the store. Everything in it is private to the user:
folders 0700, files 0600 (a task's text, its commands' output and its files may be secret). The interface stays narrow (create, open,
fork, events, metadata, list, the saved patch, the outputs folder) so that another store
(PostgreSQL, for a team server) is a new class, not a rewrite."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from core.eventlog import EventLog, EventLogError, read_events
from core.events import Event, FileRef
from core.redaction import Redactor

META_FILE = "meta.json"
EVENTS_FILE = "events.jsonl"
PATCH_FILE = "changes.patch"
OUTPUTS_DIR = "outputs"
BLOBS_DIR = ".blobs"


class SessionStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._unsynced: list[Path] = []  # blobs written since the last sync_blobs
        self._unsynced_lock = threading.Lock()

    def directory(self, session_id: str) -> Path:
        return self.root / session_id

    # ---- sessions ----------------------------------------------------------------------------
    def create(self, session_id: str, meta: dict[str, Any], redactor: Redactor) -> EventLog:
        """A new session folder with its metadata and an empty log (made durable: folder, files)."""
        directory = self.directory(session_id)
        _private_dir(self.root)
        directory.mkdir(mode=0o700)
        self.write_meta(session_id, meta)
        log = EventLog.create(directory / EVENTS_FILE, redactor)
        _fsync_dir(directory)
        return log

    def exists(self, session_id: str) -> bool:
        return (self.directory(session_id) / META_FILE).is_file()

    def open(self, session_id: str, redactor: Redactor) -> tuple[EventLog, list[Event]]:
        """The session's log, open for appending (a torn last line cut), and its events."""
        return EventLog.open(self.directory(session_id) / EVENTS_FILE, redactor)

    def fork(
        self, source_id: str, new_id: str, upto_seq: int, meta: dict[str, Any], redactor: Redactor
    ) -> EventLog:
        """A new session holding `source_id`'s events up to and including `upto_seq`."""
        kept = [e for e in self.events(source_id) if e.seq <= upto_seq]
        forked = self.create(new_id, meta, redactor)
        for event in kept:
            forked.append(event)
        forked.sync()
        return forked

    def events(self, session_id: str) -> list[Event]:
        return read_events(self.directory(session_id) / EVENTS_FILE)

    def list_meta(self) -> list[dict[str, Any]]:
        """The metadata of every readable session (unreadable folders are skipped)."""
        found = []
        if self.root.is_dir():
            for directory in self.root.iterdir():
                try:
                    found.append(self.read_meta(directory.name))
                except EventLogError:
                    continue
        return found

    # ---- metadata ----------------------------------------------------------------------------
    def read_meta(self, session_id: str) -> dict[str, Any]:
        path = self.directory(session_id) / META_FILE
        try:
            meta: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise EventLogError(f"cannot read {path}: {exc}") from exc
        return meta

    def update_meta(self, session_id: str, **values: Any) -> None:
        """Set these keys in the metadata (None removes one); `updated` is set to now."""
        meta = self.read_meta(session_id)
        for key, value in values.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        meta["updated"] = time.time()
        self.write_meta(session_id, meta)

    def write_meta(self, session_id: str, meta: dict[str, Any]) -> None:
        """Replace the metadata file atomically."""
        directory = self.directory(session_id)
        tmp = directory / (META_FILE + ".tmp")
        _write_private(tmp, json.dumps(meta, indent=1, sort_keys=True).encode())
        os.replace(tmp, directory / META_FILE)

    # ---- what the session produced ------------------------------------------------------------
    def patch_path(self, session_id: str) -> Path:
        """Where the session's last change set is saved as a patch."""
        return self.directory(session_id) / PATCH_FILE

    def save_patch(self, session_id: str, patch: str) -> None:
        _write_private(self.patch_path(session_id), patch.encode())

    def read_patch(self, session_id: str) -> str:
        path = self.patch_path(session_id)
        return path.read_text() if path.is_file() else ""

    def outputs_dir(self, session_id: str) -> Path:
        """Where the full output of a command is kept when the agent was shown only part of it."""
        return self.directory(session_id) / OUTPUTS_DIR

    def log_path(self, session_id: str) -> Path:
        return self.directory(session_id) / EVENTS_FILE

    # ---- file contents -------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> FileRef:
        """Keep `data` (written to a temporary name, renamed into place) and return its ref.
        Blocking: call it off the event loop. Content already kept is not written again. It is
        made durable by the next `sync_blobs`, which the session runs with its log's fsync: so an
        OS crash loses at most the step in flight, as for the log (a process crash loses nothing)."""
        sha = hashlib.sha256(data).hexdigest()
        ref = FileRef(md5=hashlib.md5(data, usedforsecurity=False).hexdigest(), sha256=sha)
        path = self._blob_path(sha)
        if path.exists():
            return ref
        _private_dir(path.parent)
        tmp = path.with_name(f".{sha[2:12]}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with self._unsynced_lock:
            self._unsynced.append(path)
        return ref

    def sync_blobs(self) -> None:
        """fsync the blobs kept since the last call (blocking)."""
        with self._unsynced_lock:
            paths, self._unsynced = self._unsynced, []
        for path in paths:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for folder in {p.parent for p in paths}:
            _fsync_dir(folder)

    def read_blob(self, sha256: str) -> bytes | None:
        """The content kept under `sha256`, or None when it is not (never kept, or lost or damaged
        in a crash: the content is checked against its hash)."""
        try:
            data = self._blob_path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def _blob_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / BLOBS_DIR / sha256[:2] / sha256[2:]


def _private_dir(directory: Path) -> None:
    """Make `directory` (and missing parents) with mode 0700."""
    if not directory.is_dir():
        _private_dir(directory.parent)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
