"""Open documents and paths: what the agent sees of the editor's buffers.

An open buffer is what the user has for its file, saved or not: the live mirror (core.mirror)
takes it as the host's version of that file while it is open, so the sandbox follows the editor's
text (unless the agent changed the file: then it is a conflict, shown at review). Buffers reach
the mirror as they change (`register`), and all of them before a prompt starts."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import Workspace

from core.session import Session

if TYPE_CHECKING:
    from agent_lsp.server import SidehandServer

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


async def mirror_open_buffers(server: SidehandServer, session: Session) -> None:
    """Wait until the session's sandbox holds the open buffers (sent as they change; here again,
    for those opened before there was a session): the turn about to start sees what the user sees."""
    for uri in list(server.workspace.text_documents):
        buffer_changed(server, uri)
    watch = session.host_watch
    if watch is not None:
        watch.flush_buffers()
        await session.host_synced()


def buffer_changed(server: SidehandServer, uri: str, closed: bool = False) -> None:
    """An editor opened, edited or closed `uri`: the live mirror takes its text as the file's."""
    manager = server.live_manager()
    if manager is None or manager.host_watches is None:
        return
    text = None if closed else open_text(server.workspace, uri)
    try:
        path = uri_to_path(uri).resolve()
    except ValueError:
        return  # not a file
    manager.host_watches.set_buffer(path, None if text is None else text.encode())


def register(server: SidehandServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SidehandServer, params: types.DidOpenTextDocumentParams) -> None:
        buffer_changed(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SidehandServer, params: types.DidChangeTextDocumentParams) -> None:
        buffer_changed(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SidehandServer, params: types.DidCloseTextDocumentParams) -> None:
        buffer_changed(ls, params.text_document.uri, closed=True)
