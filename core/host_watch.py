"""The host's side of the live mirror: which workspace files the user changed, as they change.

One `HostWatch` per workspace folder, shared by the sessions (and the ready sandboxes) on it.
watchfiles (the notify crate: inotify on Linux) runs on two threads, its debounce and step tuned for
latency: one watches the workspace's top folder alone, the other every top-level folder the ignore
rules keep, recursively (so a root `node_modules`, `.venv` or `.git` costs no inotify watch and
sends no event). A batch of changed paths is filtered by the rules and read on the watching
thread (never following a symlink), then handed to every subscriber on the event loop.

When watchfiles fails (it stops for good on a file name that is not UTF-8; a folder it cannot
watch), the watch is made again and a batch with `snapshot` set says what every host file holds
now: events in between were lost, so subscribers compare everything.

An editor's open buffer is the host's content of its file (`set_buffer`); while it is open, the
file's changes on disk are not reported (the buffer is what the user sees)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles._rust_notify import RustNotify  # public watch() hides when the watch is in place

from core.errors import UnsafePathError
from core.host_workspace import HostWorkspace
from core.ignore import IgnoreRules

log = logging.getLogger(__name__)

DEBOUNCE_MS = 50  # the longest a burst of changes is held before it is reported
STEP_MS = 2  # a change is reported once no other came for this long
WAKE_MS = 500  # the watching threads check whether to stop this often
BUFFER_DELAY = 0.05  # seconds an editor's typing is grouped before it is mirrored
RETRY_PAUSE = 1.0  # seconds between making the watch again after it failed


@dataclass(frozen=True)
class HostFile:
    """A workspace file as the host has it now (an editor's unsaved buffer counts): its content
    (None: no regular file there) and whether it is executable."""

    content: bytes | None
    executable: bool = False


@dataclass
class HostChanges:
    """What changed on the host: `files` with their content now. `snapshot` (md5 of every file the
    host has, by path) is set when events were lost: compare everything; a path it lacks is gone."""

    files: dict[str, HostFile] = field(default_factory=dict)
    snapshot: dict[str, str] | None = None


Subscriber = Callable[[HostChanges], None]


class HostWatch:
    def __init__(self, root: Path, rules: IgnoreRules, max_file_size: int = 0) -> None:
        self.root = root.resolve()
        self.rules = rules
        self.max_file_size = max_file_size
        self.host = HostWorkspace(self.root)
        self._subscribers: list[Subscriber] = []
        self._buffers: dict[str, bytes] = {}
        self._buffer_timer: asyncio.TimerHandle | None = None
        self._buffers_due: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._generation = 0  # which set of notifiers is current (the others are closing)
        self._restart = threading.Lock()
        self._watched: set[str] = set()  # the top-level folders watched recursively
        self.failed: str | None = None  # why there is no live mirror (None: there is one)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Watch from now on: a change made after this returns is reported."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open, False)

    def _open(self, after_failure: bool) -> None:
        """Make the notifiers (the watch is in place when this returns) and their threads; the
        previous ones stop at their next wake-up (they overlap: no change falls between)."""
        with self._restart:
            self._generation += 1
            generation = self._generation
            folders = self._kept_folders()
            try:
                top = RustNotify([str(self.root)], False, False, 50, False, True)
                paths = [str(self.root / name) for name in folders]
                deep = RustNotify(paths, False, False, 50, True, True) if paths else None
            except (OSError, RuntimeError) as exc:
                self.failed = f"the workspace cannot be watched ({exc})"
                log.warning("no live mirror of %s: %s", self.root, self.failed)
                return
            self.failed = None
            self._watched = set(folders)
            self._threads = [t for t in self._threads if t.is_alive()]
            for name, notifier in (("top", top), ("deep", deep)):
                if notifier is not None:
                    thread = threading.Thread(
                        target=self._watch,
                        args=(notifier, generation),
                        name=f"sidehand-watch-{name}",
                        daemon=True,
                    )
                    self._threads.append(thread)
                    thread.start()
        if after_failure:
            self._post(HostChanges(snapshot=self._snapshot()))

    def _kept_folders(self) -> list[str]:
        """The top-level folders to watch recursively: all but .git and what the rules ignore."""
        names = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.root):
                kept = entry.name != ".git" and not self.rules.ignored(entry.name, True)
                if kept and entry.is_dir(follow_symlinks=False):
                    names.append(entry.name)
        return sorted(names)

    async def close(self) -> None:
        self._stop.set()
        if self._buffer_timer is not None:
            self._buffer_timer.cancel()
        threads, self._threads = self._threads, []

        def join() -> None:
            for thread in threads:
                thread.join(WAKE_MS / 1000 * 4)

        await asyncio.to_thread(join)

    # ---- subscribers -----------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` (on the event loop) with every batch of host changes from now on,
        starting with the open buffers (a new copy of the workspace has the files on disk)."""
        self._subscribers.append(subscriber)
        buffers = {rel: found for rel in sorted(self._buffers) if (found := self.read(rel)) is not None}
        if buffers:
            subscriber(HostChanges(buffers))
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _deliver(self, changes: HostChanges) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(changes)
            except Exception:
                log.exception("a host-change subscriber failed")

    def _post(self, changes: HostChanges) -> None:
        if (changes.files or changes.snapshot is not None) and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                self._loop.call_soon_threadsafe(self._deliver, changes)

    # ---- reading the host ------------------------------------------------------------------
    def read(self, rel: str) -> HostFile | None:
        """What the host has at `rel` now (an open buffer first); None when it is not mirrored
        (ignored, over the size limit, or not a regular file: a symlink, a folder)."""
        if rel in self._buffers:
            return HostFile(self._buffers[rel], self._executable(rel))
        if rel.startswith(".git/") or rel == ".git" or self.rules.ignored(rel):
            return None
        try:
            info = os.lstat(self.root / rel)
        except FileNotFoundError:
            return HostFile(None)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None  # a folder (its files are read one by one), a symlink, a device
        if self.max_file_size and info.st_size > self.max_file_size:
            return None
        try:
            content = self.host.read(rel)
        except UnsafePathError:
            return None
        return HostFile(content, bool(info.st_mode & 0o111))

    def _executable(self, rel: str) -> bool:
        try:
            return bool(os.lstat(self.root / rel).st_mode & 0o111)
        except OSError:
            return False

    def files_below(self, folder: str) -> Iterator[str]:
        """The mirrored regular files under `folder` ("" for all), as relative paths."""
        start = self.root / folder if folder else self.root
        stack = [(start, f"{folder}/" if folder else "")]
        while stack:
            path, prefix = stack.pop()
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                rel = prefix + entry.name
                if rel == ".git":
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if self.rules.ignored(rel, is_dir):
                    continue
                if is_dir:
                    stack.append((Path(entry.path), rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    yield rel

    def differences(
        self, known: Mapping[str, str | None], snapshot: Mapping[str, str]
    ) -> dict[str, HostFile]:
        """After lost events: every path where the snapshot and `known` (what a sandbox last took
        from the host, md5 by path) disagree, read from the host now (blocking)."""
        differing = {p for p in set(snapshot) | set(known) if snapshot.get(p) != known.get(p)}
        found = {p: self.read(p) for p in sorted(differing)}
        return {p: f for p, f in found.items() if f is not None}

    def _snapshot(self) -> dict[str, str]:
        """md5 of every mirrored host file (open buffers as they are in the editor)."""
        sums: dict[str, str] = {}
        for rel in self.files_below(""):
            found = self.read(rel)
            if found is not None and found.content is not None:
                sums[rel] = hashlib.md5(found.content, usedforsecurity=False).hexdigest()
        return sums

    # ---- the watching threads --------------------------------------------------------------
    def _watch(self, notifier: RustNotify, generation: int) -> None:
        try:
            while not self._stop.is_set() and generation == self._generation:
                try:
                    raw = notifier.watch(DEBOUNCE_MS, STEP_MS, WAKE_MS, None)
                except RuntimeError as exc:  # WatchfilesRustInternalError: this watch is done for
                    log.info("the host watch failed (%s): watching again and comparing every file", exc)
                    self._stop.wait(RETRY_PAUSE)
                    if not self._stop.is_set() and generation == self._generation:
                        self._open(after_failure=True)
                    return
                if isinstance(raw, set) and raw:
                    self._changed({path for _, path in raw}, generation)
        finally:
            notifier.close()

    def _changed(self, paths: set[str], generation: int) -> None:
        rels = []
        for path in sorted(paths):
            try:
                rel = Path(path).relative_to(self.root).as_posix()
            except ValueError:
                continue
            if rel not in (".", "") and rel != ".git" and not rel.startswith(".git/"):
                rels.append(rel)
        if any(r == ".gitignore" or r.endswith("/.gitignore") for r in rels):
            self.rules.reload()  # applies to changes from now on
        # A top-level folder came or went: watch the new set first, then list what it holds (so
        # a file made in it meanwhile is seen by one or the other).
        if generation == self._generation and set(self._kept_folders()) != self._watched:
            self._open(after_failure=False)
        files: dict[str, HostFile] = {}
        for rel in rels:
            if rel in self._buffers:
                continue
            found = self.read(rel)
            if found is not None:
                files[rel] = found
            elif (self.root / rel).is_dir() and not (self.root / rel).is_symlink():
                # A folder came (made, moved in, renamed): its files may predate its watch.
                for inner in self.files_below(rel):
                    if (inner_found := self.read(inner)) is not None:
                        files[inner] = inner_found
        self._post(HostChanges(files))

    # ---- editor buffers --------------------------------------------------------------------
    def set_buffer(self, rel: str, content: bytes | None) -> None:
        """The editor holds `rel` open with `content` (None: closed, the file on disk counts
        again). Mirrored after a short pause, so typing is sent once per pause."""
        if content is None:
            if self._buffers.pop(rel, None) is None:
                return
        elif self._buffers.get(rel) == content:
            return
        else:
            self._buffers[rel] = content
        self._buffers_due.add(rel)
        if self._buffer_timer is None:
            loop = self._loop or asyncio.get_running_loop()
            self._buffer_timer = loop.call_later(BUFFER_DELAY, self._flush_buffers)

    def buffer(self, rel: str) -> bytes | None:
        """The editor's text of `rel` while it is open (None: not open)."""
        return self._buffers.get(rel)

    def flush_buffers(self) -> None:
        """Mirror the buffers changed since the last time now, not after the pause."""
        if self._buffer_timer is not None:
            self._buffer_timer.cancel()
            self._flush_buffers()

    def _flush_buffers(self) -> None:
        self._buffer_timer = None
        due, self._buffers_due = self._buffers_due, set()
        files = {rel: found for rel in sorted(due) if (found := self.read(rel)) is not None}
        if files:
            self._deliver(HostChanges(files))


def add_gone_below(files: dict[str, HostFile], known: list[str]) -> None:
    """A path gone from the host may have been a folder: every known file below it is gone too."""
    gone = {p for p, f in files.items() if f.content is None}
    if not gone:
        return
    for path in known:
        if path in files:
            continue
        parent = path.rpartition("/")[0]
        while parent:
            if parent in gone:
                files[path] = HostFile(None)
                break
            parent = parent.rpartition("/")[0]
