"""What the sandbox changed: its files' checksums against the baseline taken when it was copied.

The diff of each change is against the host file as it is now (what the user will see it applied
to), while `base_md5` stays the md5 of the version the sandbox copied: so when the user edited the
file meanwhile, core.changes.check_conflicts sees the host no longer matches and refuses to
overwrite it, and the diff still shows exactly what applying would do."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from core.changes import ChangeSet, FileChange, make_change
from core.protocols import PathKind

log = logging.getLogger(__name__)


class SandboxFiles(Protocol):
    """What the change scan needs of the sandbox (paths relative to its workspace)."""

    async def read_file(self, path: str) -> bytes: ...

    async def path_kind(self, path: str) -> PathKind | None: ...


def parse_md5sum(output: bytes) -> dict[str, str]:
    """`md5sum` lines (`<md5>  ./path`) to {relative path: md5}.

    GNU md5sum marks a line whose name has a backslash, newline or CR with a leading backslash and
    escapes those characters as \\\\, \\n and \\r. Lines are split on newline only, which such names
    never contain once escaped."""
    sums: dict[str, str] = {}
    for line in output.split(b"\n"):
        if not line:
            continue
        escaped = line.startswith(b"\\")
        if escaped:
            line = line[1:]
        digest, name = line[:32].decode("ascii"), line[34:]
        if escaped:
            name = _unescape(name)
        path = name.decode("utf-8", "surrogateescape")
        sums[path.removeprefix("./")] = digest
    return sums


def _unescape(name: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(name):
        if name[i : i + 1] == b"\\" and i + 1 < len(name):
            out += {b"n": b"\n", b"r": b"\r", b"\\": b"\\"}.get(name[i + 1 : i + 2], name[i : i + 2])
            i += 2
        else:
            out += name[i : i + 1]
            i += 1
    return bytes(out)


def read_host_file(workspace: Path, rel: str) -> bytes | None:
    """The host's current content of `rel`, or None when it is not a regular file inside the workspace
    (a symlink on the way that leads out of the workspace counts as absent: never read outside)."""
    root = workspace.resolve()
    target = root.joinpath(*rel.split("/"))
    try:
        resolved = target.resolve()
        if root not in resolved.parents or not resolved.is_file():
            return None
        return resolved.read_bytes()
    except OSError:
        return None


async def compute_changes(
    workspace: Path,
    baseline: Mapping[str, str],
    current: Mapping[str, str],
    sandbox: SandboxFiles,
) -> ChangeSet:
    """The change set from the baseline checksums to the current ones, sorted by path.

    A file the sandbox user cannot read is missing from `current` (md5sum skipped it) or fails to
    read: it is left out with a warning, never reported as deleted, since applying that would
    delete the user's file."""
    changed = sorted(
        path for path in baseline.keys() | current.keys() if baseline.get(path) != current.get(path)
    )
    files: list[FileChange] = []
    for path in changed:
        try:
            new = await _sandbox_content(sandbox, path, listed=path in current)
        except PermissionError:
            log.warning("leaving %s out of the change set: the sandbox user cannot read it", path)
            continue
        # Reading the host file and diffing are blocking work: off the event loop.
        change = await asyncio.to_thread(_describe, workspace, path, new, baseline.get(path))
        if change is not None:
            files.append(change)
    return ChangeSet(files=tuple(files))


def _describe(workspace: Path, path: str, new: bytes | None, base_md5: str | None) -> FileChange | None:
    old = read_host_file(workspace, path)
    if old == new:
        return None  # the host already has this (both sides made the same edit, or both deleted)
    change = make_change(path, old, new)
    if change.base_md5 != base_md5:
        # The host moved on since the copy: keep the base the sandbox worked from, so applying is
        # reported as a conflict instead of silently overwriting the user's edit.
        change = change.model_copy(update={"base_md5": base_md5})
    return change


async def _sandbox_content(sandbox: SandboxFiles, path: str, *, listed: bool) -> bytes | None:
    """The file's content in the sandbox, None if it is gone (PermissionError if unreadable)."""
    if not listed:
        kind = await sandbox.path_kind(path)
        if kind is None or kind == "dir":
            return None
        if kind == "file":  # there, but md5sum could not read it
            raise PermissionError(path)
        return None  # replaced by something that is not a regular file (a socket, a fifo...)
    try:
        return await sandbox.read_file(path)
    except FileNotFoundError:
        return None  # deleted by a command still running since the scan
