"""A session's files: what its sandbox changed, recorded in the log as it happens, so the change set
is the log's to keep (it survives the sandbox, a reload, a fork, a crash) and its to restore.

- `record` (after every tool call): the sandbox's changes since the last call, their contents kept
  in the store's blobs, one `WorkspaceDelta` event. A path's base is set the first time it changes:
  what the host had when the sandbox copied it (its content kept when the host still has it).
- `restore` (a new sandbox for a loaded, forked or resumed session): the files the log describes.
- `changes`: the change set, from the log and the blobs (no sandbox needed).
- `apply` / `put`: accept changes onto the host (journaled, core.apply), or set files in the
  sandbox (a reject, an editor's unsaved buffer), recorded the same way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.apply import ApplyReport, Emit, Sync, apply_changes, recover_apply
from core.changes import ChangeSet, md5, md5_of
from core.errors import UnsafePathError
from core.events import FileRef, WorkspaceDelta
from core.host_watch import HostChanges, HostFile, HostWatch, add_gone_below
from core.host_workspace import HostWorkspace
from core.protocols import Sandbox
from core.store import SessionStore
from core.workspace import WorkspaceState, change_set, delta

log = logging.getLogger(__name__)


class SessionFiles:
    def __init__(
        self,
        workspace: Path,
        state: WorkspaceState,
        store: SessionStore,
        emit: Emit,
        sync: Sync,
        sandbox: Callable[[], Awaitable[Sandbox]],
    ) -> None:
        self.workspace = workspace
        self.state = state
        self.store = store
        self._emit = emit
        self._sync = sync
        self._sandbox = sandbox
        self.host = HostWorkspace(workspace)
        self.watch: HostWatch | None = None  # the live mirror's, while it runs (it knows the buffers)
        self._lock = asyncio.Lock()  # recording and following the host: one at a time

    async def record(self, reason: str = "tool") -> WorkspaceDelta | None:
        """Log what the sandbox changed since the last call (nothing changed: no event)."""
        sandbox = await self._sandbox()
        async with self._lock:
            return await self._record_unlocked(sandbox, reason)

    async def _record_unlocked(self, sandbox: Sandbox, reason: str) -> WorkspaceDelta | None:
        if sandbox.take_refilled():  # its files are the host's again: the agent's go back in
            await self.restore(sandbox)
        changed = await sandbox.collect_changes()
        if not changed:
            return None
        sandbox_refs, base_refs = await asyncio.to_thread(self._keep, changed, dict(sandbox.copied))
        event = self._emit(delta(reason, sandbox_refs, base_refs))
        assert isinstance(event, WorkspaceDelta)
        return event

    async def follow_host(self, sandbox: Sandbox, changes: HostChanges, host: HostWatch) -> HostFollowed:
        """The host's files changed (core.host_watch): the sandbox takes each new content where
        the agent's side has no change of its own (files it never touched, or left as the host had
        them: those are logged). Where both sides changed a file it keeps the agent's version: a
        conflict, shown with both versions in the change set, never overwritten either way."""
        async with self._lock:
            files = dict(changes.files)
            if changes.snapshot is not None:
                known = {**sandbox.copied, **{p: _md5(r) for p, r in self.state.base.items()}}
                files.update(await asyncio.to_thread(host.differences, known, changes.snapshot))
            add_gone_below(files, [*sandbox.copied, *self.state.sandbox])
            state, copied = self.state, sandbox.copied
            wanted: dict[str, HostFile] = {}
            expect: dict[str, str | None] = {}
            caught_up: dict[str, bytes | None] = {}
            conflicts = []
            for path, host_file in files.items():
                new = md5_of(host_file.content)
                if path in state.sandbox:
                    held, base = _md5(state.sandbox[path]), _md5(state.base.get(path))
                    if held == new:  # the host caught up (an apply, or the same edit by hand)
                        if base != new:
                            caught_up[path] = host_file.content
                    elif held == base:  # the agent left it as the host had it: it follows
                        wanted[path], expect[path] = host_file, held
                    elif base != new:
                        conflicts.append(path)
                elif copied.get(path) != new:
                    wanted[path], expect[path] = host_file, copied.get(path)
            taken = await sandbox.follow_host(wanted, expect) if wanted else set()
            # Logged: files of the change set's history that now follow the host (sandbox and base
            # alike), and files whose base caught up with the sandbox (no longer a change).
            followed = {p: wanted[p].content for p in taken if p in state.sandbox}
            if followed or caught_up:
                refs = await asyncio.to_thread(self._put_blobs, followed | caught_up)
                self._emit(delta("host", {p: refs[p] for p in followed}, refs))
            # Not taken: the agent changed it since the last record; that record makes it a conflict.
            conflicts += sorted(set(wanted) - taken)
        return HostFollowed(taken=sorted(taken), conflicts=sorted(conflicts))

    def _put_blobs(self, files: Mapping[str, bytes | None]) -> dict[str, FileRef | None]:
        return {p: None if d is None else self.store.put_blob(d) for p, d in files.items()}

    def _keep(
        self, changed: Mapping[str, bytes | None], copied: Mapping[str, str]
    ) -> tuple[dict[str, FileRef | None], dict[str, FileRef | None]]:
        """Blob refs for the new contents, and bases for paths seen for the first time (blocking)."""
        sandbox_refs = {p: None if data is None else self.store.put_blob(data) for p, data in changed.items()}
        base_refs: dict[str, FileRef | None] = {}
        for path in changed:
            if path in self.state.base or path in self.state.sandbox:
                continue
            copied_md5 = copied.get(path)
            base_refs[path] = None if copied_md5 is None else self._base_ref(path, copied_md5)
        return sandbox_refs, base_refs

    def host_version(self, path: str) -> bytes | None:
        """What the user has for `path` now: an editor's open buffer, else the file (None:
        absent). UnsafePathError when it is not a regular file. Blocking."""
        if self.watch is not None and (buffered := self.watch.buffer(path)) is not None:
            return buffered
        return self.host.read(path)

    def _base_ref(self, path: str, copied_md5: str) -> FileRef:
        """The base of a path the sandbox had copied: its content kept when the host still has it."""
        try:
            current = self.host_version(path)
        except UnsafePathError:
            current = None
        if current is not None and md5(current) == copied_md5:
            return self.store.put_blob(current)
        return FileRef(md5=copied_md5)  # the host moved on: a conflict, diffed against the host's file

    async def restore(self, sandbox: Sandbox) -> int:
        """Put the files the log describes into a new sandbox (copied from the host as it is now).
        Returns how many files were put."""
        wanted = self.state.sandbox_files()
        if not wanted:
            return 0
        copied = sandbox.copied
        files = await asyncio.to_thread(
            self._contents, {p: r for p, r in wanted.items() if _md5(r) != copied.get(p)}
        )
        await sandbox.put_files(files)
        return len(files)

    def _contents(self, refs: Mapping[str, FileRef | None]) -> dict[str, bytes | None]:
        files: dict[str, bytes | None] = {}
        for path, ref in refs.items():
            if ref is None:
                files[path] = None
            elif (data := self.store.read_blob(ref.sha256 or "")) is not None:
                files[path] = data
            else:
                log.warning("the content of %s was not kept (a crash?): the sandbox keeps the host's", path)
        return files

    async def restore_checkpoint(self, seq: int, sandbox: Sandbox | None) -> list[str]:
        """Put the sandbox's files back as they were at the log's event `seq` (a checkpoint), and
        log it. Only the agent's side moves: a file that then held the agent's own version gets it
        back; any other file the agent has touched since follows the host again (as the user has it
        now). Files the agent never touched, the user's new files among them, are left alone, and
        the host is not written. Without a running sandbox only the log moves (the next sandbox
        is made from it). Returns the paths whose sandbox content changed."""
        async with self._lock:
            if sandbox is not None:
                await self._record_unlocked(sandbox, "tool")
            then, now = self.state.at(seq), self.state
            restore = {p: then.sandbox[p] for p in then.sandbox if then.agent_changed(p)}
            follow = [p for p in now.sandbox if p not in restore and now.agent_changed(p)]
            targets = {
                **await asyncio.to_thread(self._contents, restore),
                **await asyncio.to_thread(self._host_versions, follow),
            }
            wanted = {p: d for p, d in targets.items() if md5_of(d) != _md5(now.sandbox.get(p))}
            if not wanted:
                return []
            if sandbox is not None:
                await sandbox.put_files(wanted)
            refs = await asyncio.to_thread(self._put_blobs, wanted)
            self._emit(delta("restore", refs, {p: refs[p] for p in follow if p in refs}))
        return sorted(wanted)

    def _host_versions(self, paths: list[str]) -> dict[str, bytes | None]:
        """The user's version of each path (a file that is not a regular one counts as absent)."""
        found: dict[str, bytes | None] = {}
        for path in paths:
            try:
                found[path] = self.host_version(path)
            except UnsafePathError:
                found[path] = None
        return found

    def changes(self) -> ChangeSet:
        """The change set the log describes (blocking: reads blobs and host files)."""
        return change_set(self.state, self.store, self.host_version)

    async def apply(self, changes: ChangeSet, *, force: bool = False, partial: bool = False) -> ApplyReport:
        return await apply_changes(
            self.workspace, changes, self.store, self._emit, self._sync, force=force, partial=partial
        )

    async def put(self, files: Mapping[str, bytes | None], reason: str, *, as_base: bool = False) -> None:
        """Set these files in the sandbox and log it. `as_base`: they are what the host has (an
        editor's unsaved buffer): base and sandbox both, so they are not changes."""
        sandbox = await self._sandbox()
        await sandbox.put_files(files)
        refs = await asyncio.to_thread(
            lambda: {p: None if d is None else self.store.put_blob(d) for p, d in files.items()}
        )
        self._emit(delta(reason, refs, refs if as_base else {}))

    async def set_bases(self, files: Mapping[str, bytes | None], reason: str) -> None:
        """What the host has for these files is this (None: nothing): an editor's unsaved buffer,
        or changes an editor applied itself. The change set is measured against it; the sandbox
        keeps its files."""
        refs = await asyncio.to_thread(
            lambda: {p: None if d is None else self.store.put_blob(d) for p, d in files.items()}
        )
        self._emit(delta(reason, {}, refs))

    async def base_content(self, path: str) -> bytes | None:
        """The content `path` had on the host when the agent's side first changed it (None: absent),
        from the store, or the host's file where it was not kept."""
        ref = self.state.base.get(path)
        if ref is None:
            return None
        if ref.sha256 and (kept := await asyncio.to_thread(self.store.read_blob, ref.sha256)) is not None:
            return kept
        try:
            return await asyncio.to_thread(self.host_version, path)
        except UnsafePathError:
            return None

    def recover(self) -> None:
        """Complete or roll back an apply the log left open (blocking)."""
        finished = recover_apply(self.workspace, self.state, self.store)
        if finished is not None:
            self._emit(finished)


def _md5(ref: FileRef | None) -> str | None:
    return None if ref is None else ref.md5


@dataclass(frozen=True)
class HostFollowed:
    """What a batch of host changes did: files the sandbox took, and conflicts (both sides changed
    the file; the sandbox kept the agent's version)."""

    taken: list[str]
    conflicts: list[str]
