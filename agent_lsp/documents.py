"""Open documents and paths: what the agent sees of the editor's buffers.

An open buffer is what the user has for its file, saved or not: when a prompt starts, each open
document inside the session's workspace becomes that file's base (the agent's changes are measured
against it), and, unless the agent already changed the file, the sandbox's copy too."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import Workspace

from core.changes import md5
from core.session import Session

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


async def push_open_documents(workspace: Workspace, session: Session) -> list[str]:
    """Make the open buffers under the session's workspace the bases of their files (and the
    sandbox's copies, where the agent has not changed them). Returns the paths that moved."""
    state = session.state.workspace
    changed = set(state.changed_paths())
    copied = (await session.sandbox()).copied
    copies: dict[str, bytes | None] = {}
    bases: dict[str, bytes | None] = {}
    for uri, doc in list(workspace.text_documents.items()):
        rel = relative_to(session.workspace, uri)
        if rel is None:
            continue
        data = doc.source.encode()
        digest = md5(data)
        if rel in changed:
            base = state.base.get(rel)
            if base is None or base.md5 != digest:
                bases[rel] = data
            continue
        ref = state.sandbox.get(rel)
        held = ref.md5 if ref is not None else None if rel in state.sandbox else copied.get(rel)
        if held != digest:
            copies[rel] = data
    if copies:
        await session.files.put(copies, reason="buffer", as_base=True)
    if bases:
        await session.files.set_bases(bases, reason="buffer")
    if copies or bases:
        log.debug("took %d open buffer(s) as the user's version of their files", len(copies) + len(bases))
    return sorted([*copies, *bases])
