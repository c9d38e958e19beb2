"""Open documents and paths: URIs to workspace paths, and the editor's text of a file."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import Workspace

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
