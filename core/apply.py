"""Accepting changes: write them to the user's workspace, then tell the sandbox they stand on the
host now (so they stop being reported). Every front accepts through here; files an editor wrote
itself (LSP workspace/applyEdit) only need the sandbox told, with `Sandbox.mark_synced`."""

from __future__ import annotations

from pathlib import Path

from core.changes import ChangeSet, write_changes
from core.protocols import Sandbox


async def apply_changes(
    workspace: Path, sandbox: Sandbox, changes: ChangeSet, *, force: bool = False
) -> list[str]:
    """Write `changes` to `workspace` (all or nothing; a conflict refuses unless `force`) and mark
    them synced in `sandbox`. Returns the paths written."""
    written = write_changes(workspace, changes, force=force)
    await sandbox.mark_synced(changes)
    return written
