"""Accepting changes: the only code that writes the user's files, journaled so a crash never leaves
a half-applied change set unexplained.

An apply (1) checks every file first: inside the workspace, no symlink on the way, a regular file
or nothing at the target, and unchanged on the host since the sandbox took it (unless `force`);
(2) logs `ApplyStarted` with each file's expected host md5, the content to write and the content to
put back, and makes it durable; (3) writes the files (`HostWorkspace`: a temporary file renamed
over the target, never following a symlink); (4) logs `ApplyFinished`, which moves the written
files' bases (they no longer count as changes). An apply found without its `ApplyFinished` (the
process died in step 3) is recovered the next time its session is opened: completed when every
file is either as expected or already written, else rolled back; `ApplyFinished.message` says which.

Without `partial`, one refused file means nothing is written and the error names each refused file
and why; with it, the others are written and the report lists what was refused."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.changes import ChangeSet, md5
from core.errors import ConflictError, UnsafePathError
from core.events import ApplyEntry, ApplyFinished, ApplyStarted, Event, FileRef
from core.host_workspace import HostWorkspace
from core.paths import escape_path, unescape_path
from core.store import SessionStore
from core.workspace import WorkspaceState

log = logging.getLogger(__name__)

Emit = Callable[[Event], Event]
Sync = Callable[[], Awaitable[None]]
CONFLICT = "changed on the host since the sandbox took it"


@dataclass
class ApplyReport:
    """What an apply did: the paths written, and those refused with the reason."""

    written: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


@dataclass
class _Plan:
    entries: dict[str, ApplyEntry] = field(default_factory=dict)  # path -> entry, for the files to write
    contents: dict[str, bytes | None] = field(default_factory=dict)  # path -> what to write
    refused: dict[str, str] = field(default_factory=dict)


async def apply_changes(
    workspace: Path,
    changes: ChangeSet,
    store: SessionStore,
    emit: Emit,
    sync: Sync,
    *,
    force: bool = False,
    partial: bool = False,
) -> ApplyReport:
    """Write `changes` to `workspace`, journaled in the session's log through `emit` / `sync`."""
    host = HostWorkspace(workspace)
    plan = await asyncio.to_thread(_plan, host, changes, store, force)
    if plan.refused and not partial:
        raise _refusal(plan.refused)
    report = ApplyReport(refused=dict(plan.refused))
    if not plan.entries:
        return report
    apply_id = uuid.uuid4().hex
    emit(ApplyStarted(apply_id=apply_id, files={escape_path(p): e for p, e in plan.entries.items()}))
    await sync()  # the journal entry is durable before the first file is touched
    written, raced = await asyncio.to_thread(_write, host, plan.contents)
    report.written, report.refused = written, {**report.refused, **raced}
    emit(
        ApplyFinished(
            apply_id=apply_id,
            written=tuple(escape_path(p) for p in written),
            refused={escape_path(p): why for p, why in report.refused.items()},
        )
    )
    await sync()
    return report


def _plan(host: HostWorkspace, changes: ChangeSet, store: SessionStore, force: bool) -> _Plan:
    """Check every file, and keep what a rollback would need (blocking: runs on a worker thread)."""
    plan = _Plan()
    for change in changes.files:
        try:
            current = host.read(change.path)
            host.check_writable(change.path)
        except UnsafePathError as exc:
            plan.refused[change.path] = str(exc)
            continue
        current_md5 = None if current is None else md5(current)
        if current_md5 != change.base_md5 and not force:
            plan.refused[change.path] = CONFLICT
            continue
        write = None if change.new_content is None else store.put_blob(change.new_content)
        previous = None if current is None else store.put_blob(current)
        plan.entries[change.path] = ApplyEntry(expect=current_md5, write=write, previous=previous)
        plan.contents[change.path] = change.new_content
    return plan


def _write(host: HostWorkspace, contents: dict[str, bytes | None]) -> tuple[list[str], dict[str, str]]:
    written: list[str] = []
    raced: dict[str, str] = {}
    for path, data in contents.items():
        try:
            if data is None:
                host.delete(path)
            else:
                host.write(path, data)
        except UnsafePathError as exc:  # the host changed between the check and the write
            raced[path] = str(exc)
            continue
        written.append(path)
    return written, raced


def _refusal(refused: dict[str, str]) -> ConflictError | UnsafePathError:
    if all(why == CONFLICT for why in refused.values()):
        return ConflictError(
            f"these files changed on the host since the sandbox took them: "
            f"{', '.join(escape_path(p) for p in refused)}; review them, then apply again with force "
            "to overwrite. Nothing was written."
        )
    listed = "; ".join(f"{escape_path(p)}: {why}" for p, why in refused.items())
    return UnsafePathError(f"nothing was written; refused: {listed}")


# ---- recovery -----------------------------------------------------------------------------------


def recover_apply(workspace: Path, state: WorkspaceState, store: SessionStore) -> ApplyFinished | None:
    """The ApplyFinished for an apply the log left open (the process died while writing), after
    completing it or rolling it back on the host; None when no apply is open. Blocking."""
    started = state.open_apply
    if started is None:
        return None
    host = HostWorkspace(workspace)
    done: list[str] = []  # already written
    todo: list[str] = []  # still as expected: to write
    blocked: dict[str, str] = {}  # neither: someone changed them since
    host.remove_temp_files(unescape_path(key) for key in started.files)
    for key, entry in started.files.items():
        path = unescape_path(key)
        try:
            current = host.read(path)
        except UnsafePathError as exc:
            blocked[path] = str(exc)
            continue
        current_md5 = None if current is None else md5(current)
        if current_md5 == _md5(entry.write):
            done.append(path)
        elif current_md5 == entry.expect:
            if entry.write is not None and store.read_blob(entry.write.sha256 or "") is None:
                blocked[path] = "its new content was not kept"
            else:
                todo.append(path)
        else:
            blocked[path] = CONFLICT
    entries = {unescape_path(k): e for k, e in started.files.items()}
    if not blocked:
        for path in todo:
            _put(host, path, entries[path].write, store)
        written = sorted([*done, *todo])
        message = (
            f"An apply of {len(entries)} file(s) was interrupted (the process stopped while writing); "
            f"it was completed: {len(todo)} file(s) written now, {len(done)} had been written."
        )
        log.warning("%s", message)
        return ApplyFinished(
            apply_id=started.apply_id,
            written=tuple(escape_path(p) for p in written),
            recovered="completed",
            message=message,
        )
    undone = []
    for path in done:
        previous = entries[path].previous
        if previous is None or store.read_blob(previous.sha256 or "") is not None:
            _put(host, path, previous, store)
            undone.append(path)
        else:
            blocked[path] = "its previous content was not kept: left as the apply wrote it"
    message = (
        f"An apply of {len(entries)} file(s) was interrupted and could not be completed "
        f"({'; '.join(f'{escape_path(p)}: {why}' for p, why in blocked.items())}); it was rolled back: "
        f"{len(undone)} file(s) restored, nothing else changed."
    )
    log.warning("%s", message)
    return ApplyFinished(
        apply_id=started.apply_id,
        refused={escape_path(p): why for p, why in blocked.items()},
        recovered="rolled_back",
        message=message,
    )


def _put(host: HostWorkspace, path: str, ref: FileRef | None, store: SessionStore) -> None:
    if ref is None:
        host.delete(path)
        return
    data = store.read_blob(ref.sha256 or "")
    assert data is not None  # checked by the caller
    host.write(path, data)


def _md5(ref: FileRef | None) -> str | None:
    return None if ref is None else ref.md5
