"""Open documents and paths: what the agent sees of the editor's buffers.

The simplest honest version of the live mirror (a later issue): when a prompt starts, the unsaved
text of every open document inside the session's workspace is written into the sandbox copy, and
the sandbox is told that text is its new baseline (so it does not show up as the agent's change)."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import Workspace

from core.changes import ChangeSet, make_change
from core.protocols import WORKDIR, Sandbox

log = logging.getLogger(__name__)


def uri_to_path(uri_or_path: str) -> Path:
    if "://" in uri_or_path:
        path = to_fs_path(uri_or_path)
        if path is None:
            raise ValueError(f"{uri_or_path!r} is not a file URI")
        return Path(path)
    return Path(uri_or_path)


def path_to_uri(path: Path) -> str:
    uri: str | None = from_fs_path(str(path))
    assert uri is not None
    return uri


def relative_to(workspace: Path, uri: str) -> str | None:
    """The workspace-relative POSIX path of `uri`, or None when it lies outside."""
    try:
        rel = uri_to_path(uri).resolve().relative_to(workspace.resolve())
    except ValueError:
        return None
    return PurePosixPath(*rel.parts).as_posix() if rel.parts else None


def open_text(workspace: Workspace, uri: str) -> str | None:
    """The editor's current text of `uri` when it is open (unsaved edits included), else None."""
    doc = workspace.text_documents.get(uri)
    return doc.source if doc is not None else None


def host_text(workspace: Workspace, uri: str) -> str | None:
    """The open buffer's text, or the file on disk, or None when neither exists."""
    text = open_text(workspace, uri)
    if text is not None:
        return text
    path = uri_to_path(uri)
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def open_version(workspace: Workspace, uri: str) -> int | None:
    doc = workspace.text_documents.get(uri)
    return doc.version if doc is not None else None


async def push_open_documents(workspace: Workspace, root: Path, sandbox: Sandbox) -> list[str]:
    """Write the open buffers under `root` into the sandbox where they differ. Returns their paths."""
    synced = []
    for uri, doc in list(workspace.text_documents.items()):
        rel = relative_to(root, uri)
        if rel is None:
            continue
        data = doc.source.encode()
        target = f"{WORKDIR}/{rel}"
        try:
            current: bytes | None = await sandbox.read_file(target)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            current = None
        if current == data:
            continue
        await sandbox.write_file(target, data)
        await sandbox.mark_synced(ChangeSet(files=(make_change(rel, current, data),)))
        synced.append(rel)
    if synced:
        log.debug("wrote %d unsaved buffer(s) into the sandbox", len(synced))
    return synced
