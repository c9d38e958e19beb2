"""The live mirror, host → sandbox: while a session's sandbox runs, what the user changes on the
host (files saved, made, deleted, renamed; an editor's unsaved buffers) reaches the sandbox at
once, so the agent's next command sees it.

`HostWatches` hands out one `core.host_watch.HostWatch` per workspace folder, shared by the
sessions on it. A `Follower` feeds one sandbox the batches: a session's has `SessionFiles` decide,
file by file, what it takes (`SessionFiles.follow_host`: the agent's own changes are never
overwritten); a ready sandbox no session uses yet takes everything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.changes import md5_of
from core.config import Settings
from core.host_watch import HostChanges, HostWatch, add_gone_below
from core.ignore import IgnoreRules
from core.paths import escape_path
from core.protocols import Sandbox
from core.session_files import HostFollowed, SessionFiles

log = logging.getLogger(__name__)

NOTE_NAMES = 20  # at most this many paths named in a note to the model


class HostWatches:
    """One HostWatch per workspace folder, made on first use and closed when its last user is done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._watches: dict[Path, HostWatch] = {}
        self._users: dict[Path, int] = {}
        self._lock = asyncio.Lock()
        self._buffers: dict[Path, bytes] = {}  # an editor's open documents, by absolute path

    async def acquire(self, workspace: Path) -> HostWatch:
        root = workspace.resolve()
        async with self._lock:
            watch = self._watches.get(root)
            if watch is None:
                rules = IgnoreRules(
                    root,
                    self.settings.sandbox_excludes,
                    gitignore=self.settings.sandbox_gitignore,
                    private=(self.settings.sessions_dir,),
                )
                watch = HostWatch(root, rules, self.settings.sandbox_max_file_size)
                await watch.start()
                for path, content in self._buffers.items():
                    if path.is_relative_to(root):
                        watch.set_buffer(path.relative_to(root).as_posix(), content)
                watch.flush_buffers()
                self._watches[root] = watch
            self._users[root] = self._users.get(root, 0) + 1
            return watch

    async def release(self, watch: HostWatch) -> None:
        async with self._lock:
            left = self._users.get(watch.root, 0) - 1
            if left > 0:
                self._users[watch.root] = left
                return
            self._users.pop(watch.root, None)
            if self._watches.get(watch.root) is watch:
                del self._watches[watch.root]
            await watch.close()

    def set_buffer(self, path: Path, content: bytes | None) -> None:
        """An editor holds `path` (absolute) open with `content` (None: closed): the host's version
        of that file for every watch whose folder holds it, now and when one starts."""
        if content is None:
            self._buffers.pop(path, None)
        else:
            self._buffers[path] = content
        for root, watch in self._watches.items():
            if path.is_relative_to(root) and path != root:
                watch.set_buffer(path.relative_to(root).as_posix(), content)

    async def aclose(self) -> None:
        async with self._lock:
            watches, self._watches, self._users = list(self._watches.values()), {}, {}
        for watch in watches:
            await watch.close()


Follow = Callable[[Sandbox, HostChanges], Awaitable[HostFollowed]]


class Follower:
    """Feeds one sandbox the host's changes, batch after batch, with `follow` deciding what it
    takes. Subscribed before the sandbox is made (so no change is missed while it is copied);
    batches wait until `attach` hands it the sandbox."""

    def __init__(
        self, watch: HostWatch, follow: Follow, note: Callable[[HostFollowed], None] | None = None
    ) -> None:
        self.watch = watch
        self._follow = follow
        self._note = note
        self._pending = HostChanges()
        self._wake = asyncio.Event()
        self._sandbox: asyncio.Future[Sandbox] = asyncio.get_running_loop().create_future()
        self.idle = asyncio.Event()  # set when every batch taken so far has been mirrored
        self.idle.set()
        self._task = asyncio.create_task(self._run())
        self._unsubscribe = watch.subscribe(self._take)

    def attach(self, sandbox: Sandbox) -> None:
        if not self._sandbox.done():
            self._sandbox.set_result(sandbox)

    def _take(self, changes: HostChanges) -> None:
        if changes.snapshot is not None:
            self._pending = HostChanges(dict(changes.files), changes.snapshot)
        else:
            self._pending.files.update(changes.files)
        self.idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        sandbox = await self._sandbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, HostChanges()
            try:
                followed = await self._follow(sandbox, batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not mirror the host's changes into the sandbox", exc_info=True)
            else:
                if self._note is not None and (followed.taken or followed.conflicts):
                    self._note(followed)
            if not self._wake.is_set():
                self.idle.set()

    async def close(self) -> None:
        self._unsubscribe()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def session_follower(watch: HostWatch, files: SessionFiles, note: Callable[[HostFollowed], None]) -> Follower:
    """A session's sandbox: the agent's own changes are kept (SessionFiles.follow_host)."""
    return Follower(watch, lambda sandbox, changes: files.follow_host(sandbox, changes, watch), note)


def fresh_follower(watch: HostWatch) -> Follower:
    """A sandbox no session has used yet (a ready one in a pool): it takes every host change."""

    async def follow(sandbox: Sandbox, changes: HostChanges) -> HostFollowed:
        copied = sandbox.copied
        files = dict(changes.files)
        if changes.snapshot is not None:
            files.update(await asyncio.to_thread(watch.differences, dict(copied), changes.snapshot))
        add_gone_below(files, list(copied))
        wanted = {p: f for p, f in files.items() if copied.get(p) != md5_of(f.content)}
        if not wanted:
            return HostFollowed([], [])
        taken = await sandbox.follow_host(wanted, {p: copied.get(p) for p in wanted})
        return HostFollowed(sorted(taken), [])

    return Follower(watch, follow)


def note_names(paths: list[str]) -> str:
    """Paths for a note to the model: escaped, at most NOTE_NAMES of them."""
    shown = ", ".join(escape_path(p) for p in paths[:NOTE_NAMES])
    return shown + (f" and {len(paths) - NOTE_NAMES} more" if len(paths) > NOTE_NAMES else "")
