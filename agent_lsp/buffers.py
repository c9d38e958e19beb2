"""The editor's open buffers in the live mirror.

An open buffer is what the user has for its file, saved or not: the live mirror (core.mirror)
takes it as the host's version of that file while it is open, so the sandbox follows the editor's
text (unless the agent changed the file: then it is a conflict, shown at review). Buffers reach
the mirror as they change (`register`), and all of them again before a prompt starts."""

from __future__ import annotations

from lsprotocol import types

from agent_lsp.documents import open_text, uri_to_path
from agent_lsp.server import SidehandServer
from core.session import Session


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
