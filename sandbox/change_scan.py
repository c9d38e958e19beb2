"""What the sandbox changed: its files' checksums against the baseline taken when it was copied.

The diff of each change is against the host file as it is now (what the user will see it applied
to), while `base_md5` stays the md5 of the version the sandbox copied: so when the user edited the
file meanwhile, core.changes.check_conflicts sees the host no longer matches and refuses to
overwrite it, and the diff still shows exactly what applying would do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from core.changes import ChangeSet, FileChange, make_change

ReadSandboxFile = Callable[[str], Awaitable[bytes]]


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
    read_sandbox_file: ReadSandboxFile,
) -> ChangeSet:
    """The change set from the baseline checksums to the current ones, sorted by path."""
    changed = sorted(
        path for path in baseline.keys() | current.keys() if baseline.get(path) != current.get(path)
    )
    files: list[FileChange] = []
    for path in changed:
        new = await _read_if_present(read_sandbox_file, path) if path in current else None
        old = read_host_file(workspace, path)
        if old == new:
            continue  # the host already has this (both sides made the same edit, or both deleted)
        change = make_change(path, old, new)
        base_md5 = baseline.get(path)
        if change.base_md5 != base_md5:
            # The host moved on since the copy: keep the base the sandbox worked from, so applying
            # is reported as a conflict instead of silently overwriting the user's edit.
            change = change.model_copy(update={"base_md5": base_md5})
        files.append(change)
    return ChangeSet(files=tuple(files))


async def _read_if_present(read_sandbox_file: ReadSandboxFile, path: str) -> bytes | None:
    try:
        return await read_sandbox_file(path)
    except FileNotFoundError:
        return None  # deleted by a command still running since the scan
