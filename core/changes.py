"""The change set: what the sandbox changed in its copy of the workspace, and applying it to the host.

The user's files are written only here, and only through `write_changes` (which the fronts reach
through `core.apply.apply_changes`)."""

from __future__ import annotations

import difflib
import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.errors import ConflictError, UnsafePathError

ChangeStatus = Literal["added", "modified", "deleted"]


class FileChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str  # relative to the workspace root, POSIX separators
    status: ChangeStatus
    diff: str  # unified diff; empty for binary files
    binary: bool = False
    new_content: bytes | None = None  # None for deletions
    base_md5: str | None = None  # md5 of the host file the change was made against (None: absent)


class ChangeSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    files: tuple[FileChange, ...] = ()

    def summary(self) -> str:
        if not self.files:
            return "no changes"
        return ", ".join(f"{c.status[0].upper()} {c.path}" for c in self.files)

    def patch(self) -> str:
        return "".join(c.diff for c in self.files)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _is_text(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def make_change(path: str, old: bytes | None, new: bytes | None) -> FileChange:
    """Describe one file's change, with a unified diff (a/ b/ prefixes, as `git apply` expects)."""
    status: ChangeStatus = "added" if old is None else "deleted" if new is None else "modified"
    binary = not all(_is_text(x) for x in (old, new) if x is not None)
    diff = ""
    if not binary:
        before = (old or b"").decode().splitlines(keepends=True)
        after = (new or b"").decode().splitlines(keepends=True)
        lines = difflib.unified_diff(
            before,
            after,
            fromfile="/dev/null" if old is None else f"a/{path}",
            tofile="/dev/null" if new is None else f"b/{path}",
        )
        diff = "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
        )
    return FileChange(
        path=path,
        status=status,
        diff=diff,
        binary=binary,
        new_content=new,
        base_md5=None if old is None else md5(old),
    )


def safe_host_path(workspace: Path, rel: str) -> Path:
    """Resolve `rel` inside `workspace`, refusing absolute paths, `..` and symlinks that leave it."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise UnsafePathError(f"refusing to write {rel!r}: not a relative path inside the workspace")
    root = workspace.resolve()
    target = root.joinpath(*pure.parts)
    # Every existing ancestor must resolve inside the root (a symlinked folder may not lead out).
    parent = target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise UnsafePathError(f"refusing to write {rel!r}: it leads outside the workspace")
    if target.is_symlink():
        raise UnsafePathError(f"refusing to write {rel!r}: it is a symlink on the host")
    return target


def check_conflicts(workspace: Path, changes: ChangeSet) -> list[str]:
    """Paths whose host file is no longer what the change was made against."""
    conflicts = []
    for change in changes.files:
        target = safe_host_path(workspace, change.path)
        current = md5(target.read_bytes()) if target.is_file() else None
        if current != change.base_md5:
            conflicts.append(change.path)
    return conflicts


def write_changes(workspace: Path, changes: ChangeSet, *, force: bool = False) -> list[str]:
    """Write the change set to the host workspace. Returns the paths written.

    Checks every path and every conflict before writing anything, so a refused apply writes nothing."""
    targets = [safe_host_path(workspace, c.path) for c in changes.files]
    if not force and (conflicts := check_conflicts(workspace, changes)):
        raise ConflictError(
            f"these files changed on the host since the sandbox copied them: {', '.join(conflicts)}; "
            "review them, then apply again with force to overwrite"
        )
    written = []
    for change, target in zip(changes.files, targets, strict=True):
        if change.new_content is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.sidehand-tmp")
            tmp.write_bytes(change.new_content)
            if target.exists():
                os.chmod(tmp, target.stat().st_mode & 0o7777)
            os.replace(tmp, target)
        written.append(change.path)
    return written
