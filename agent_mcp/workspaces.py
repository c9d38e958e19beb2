"""Which folders an MCP client may name as a workspace.

The allowed roots are the `--root` folders the server was started with; without any, the client's
own roots (MCP `roots/list`, when the client offers them) or else the server's working folder.
A workspace must be one of the roots or inside one, after symlinks are resolved."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from core.errors import SidehandError

log = logging.getLogger(__name__)


class WorkspaceError(SidehandError):
    """A workspace is missing, not a folder, or outside the allowed roots."""


def root_from_uri(uri: str) -> Path | None:
    """The folder of a client root (`file:///path`); None for other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether the resolved `path` is one of the roots or under one."""
    return any(path == root or root in path.parents for root in roots)


def resolve_workspace(workspace: str | None, roots: Sequence[Path]) -> Path:
    """The resolved workspace folder, or a WorkspaceError saying what is allowed."""
    if not roots:
        raise WorkspaceError("no workspace roots are allowed: start the server with --root FOLDER")
    allowed = ", ".join(str(r) for r in roots)
    if workspace is None or not workspace.strip():
        return roots[0]
    raw = Path(workspace).expanduser()
    path = raw if raw.is_absolute() else roots[0] / raw
    resolved = path.resolve()
    if not inside(resolved, roots):
        raise WorkspaceError(
            f"workspace {workspace} is outside the allowed roots ({allowed}); pass a folder inside "
            "one of them, or restart the server with --root for that folder"
        )
    if not resolved.is_dir():
        raise WorkspaceError(f"workspace {resolved} does not exist or is not a folder")
    return resolved


def normalize_roots(roots: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        resolved = root.expanduser().resolve()
        if not resolved.is_dir():
            log.warning("allowed root %s is not a folder; ignored", resolved)
            continue
        if resolved not in out:
            out.append(resolved)
    return out
