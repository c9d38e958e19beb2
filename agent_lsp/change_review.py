"""The change set over LSP: list, accept (through workspace/applyEdit, so the edit lands in the
editor's undo history, or to disk) and reject (revert in the sandbox copy), per file and per hunk."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lsprotocol import types

from agent_lsp import protocol as p
from agent_lsp.documents import host_text, open_version, path_to_uri
from agent_lsp.errors import conflict, invalid_params, rpc_error
from agent_lsp.hunks import Hunk, HunkMismatch, apply_hunks, parse_hunks, revert_hunks
from agent_lsp.server import SidehandServer
from core.changes import ChangeSet, FileChange, make_change
from core.errors import SidehandError
from core.paths import escape_path
from core.session import Session

log = logging.getLogger(__name__)
ANNOTATION = "sidehand"


def file_json(change: FileChange) -> dict[str, Any]:
    return {
        "path": change.shown_path,  # escaped where the name is not printable UTF-8 (core.paths)
        "status": change.status,
        "binary": change.binary,
        "diff": change.diff,
        "hunks": [h.to_json() for h in parse_hunks(change.diff)],
        # The agent's version of a text file (None: deleted or binary), for a client's diff editor.
        "newText": None if change.binary or change.new_content is None else change.new_content.decode(),
        # The user changed the file too (on disk) since the agent first changed it: both versions,
        # the user's as a diff from the same base. Accepting it needs `force`.
        "conflict": change.conflict,
        "hostDiff": change.host_diff,
    }


def select(changes: ChangeSet, params: p.ChangesParams) -> list[tuple[FileChange, list[Hunk] | None]]:
    """The chosen files, each with its chosen hunks (None: the whole file). Paths come as the
    server listed them (escaped)."""
    by_path = {c.shown_path: c for c in changes.files}
    if params.paths is None and params.hunks is None:
        return [(c, None) for c in changes.files]
    chosen: list[tuple[FileChange, list[Hunk] | None]] = []
    for path in params.paths or ():
        if path not in by_path:
            raise invalid_params(f"no change to {path!r} in this session")
        chosen.append((by_path[path], None))
    for selection in params.hunks or ():
        path, indexes = selection.path, selection.indexes
        change = by_path.get(path)
        if change is None:
            raise invalid_params(f"no change to {path!r} in this session")
        hunks = parse_hunks(change.diff)
        if change.binary or any(i < 0 or i >= len(hunks) for i in indexes):
            raise invalid_params(
                f"{path!r} has {len(hunks)} hunk(s) (indexes 0..{len(hunks) - 1}); got {list(indexes)}"
            )
        chosen.append((change, [hunks[i] for i in sorted(set(indexes))]))
    return chosen


def base_text(change: FileChange) -> str | None:
    """The text the sandbox started from (None: the file did not exist)."""
    if change.status == "added":
        return None
    new = (change.new_content or b"").decode() if change.new_content is not None else ""
    return revert_hunks(new, parse_hunks(change.diff))


class ChangeReview:
    def __init__(self, server: SidehandServer) -> None:
        self.server = server

    async def list_changes(self, session: Session) -> dict[str, Any]:
        changes = await session.changes()
        return {"sessionId": session.id, "files": [file_json(c) for c in changes.files]}

    async def accept(self, session: Session, params: p.ChangesParams) -> dict[str, Any]:
        changes = await session.changes()
        chosen = select(changes, params)
        if not chosen:
            return {"applied": True, "written": [], "via": "none"}
        can_edit = self.server.client_can_apply_edit()
        via = params.write or ("editor" if can_edit else "disk")
        if via == "editor" and not can_edit:
            raise invalid_params("this client cannot apply workspace edits")
        partial = [self._partial(session, c, hunks, params.force) for c, hunks in chosen if hunks is not None]
        whole = [c for c, hunks in chosen if hunks is None]
        if via == "disk":
            return await self._accept_on_disk(session, whole, partial, params.force)
        return await self.apply_through_editor(session, ChangeSet(files=(*whole, *partial)), params.force)

    def _partial(self, session: Session, change: FileChange, hunks: list[Hunk], force: bool) -> FileChange:
        """The file as it is on the host with only these hunks applied, as a change of its own."""
        uri = path_to_uri(session.workspace / change.path)
        current = host_text(self.server.workspace, uri) or ""
        try:
            text = apply_hunks(current, hunks)
        except HunkMismatch as exc:
            raise conflict(f"{change.path}: {exc}; accept the whole file with force") from None
        return make_change(change.path, current.encode(), text.encode())

    async def _accept_on_disk(
        self, session: Session, whole: list[FileChange], partial: list[FileChange], force: bool
    ) -> dict[str, Any]:
        written: list[str] = []
        try:
            if whole:
                written += (await session.apply_changes(force=force, paths=[c.path for c in whole])).written
            if partial:  # measured against the host's current text: no conflict to check
                written += (await session.files.apply(ChangeSet(files=tuple(partial)))).written
        except SidehandError as exc:
            raise rpc_error(exc) from None
        return {"applied": True, "written": [escape_path(p) for p in written], "via": "disk"}

    async def apply_through_editor(self, session: Session, changes: ChangeSet, force: bool) -> dict[str, Any]:
        """One workspace/applyEdit for the change set; files the client cannot take go to disk."""
        edit, on_disk = self.workspace_edit(session, changes, force)
        written: list[str] = []
        applied = True
        reason = None
        if edit is not None:
            result = await self.server.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label="Sidehand: apply changes")
            )
            applied, reason = bool(result.applied), result.failure_reason
        if applied:
            in_editor = [c for c in changes.files if c not in on_disk]
            if in_editor:  # the editor holds them now: they are the bases
                await session.files.set_bases({c.path: c.new_content for c in in_editor}, reason="apply")
                written += [c.path for c in in_editor]
            if on_disk:
                try:
                    report = await session.files.apply(ChangeSet(files=tuple(on_disk)), force=force)
                except SidehandError as exc:
                    raise rpc_error(exc) from None
                written += report.written
                if report.written:  # the user must know which files changed behind the editor
                    names = ", ".join(escape_path(p) for p in report.written)
                    self.server.show(
                        types.MessageType.Info,
                        f"Sidehand wrote to disk (this editor cannot take them as edits): {names}",
                    )
        return {
            "applied": applied,
            "written": [escape_path(p) for p in written],
            "via": "editor",
            "failureReason": reason,
        }

    def workspace_edit(
        self, session: Session, changes: ChangeSet, force: bool
    ) -> tuple[types.WorkspaceEdit | None, list[FileChange]]:
        caps = self.server.client_capabilities.workspace
        we = caps.workspace_edit if caps else None
        resource_ops = set(we.resource_operations or ()) if we else set()
        # Resource operations exist only inside documentChanges: a client that lists them takes
        # documentChanges even when it does not say so (Neovim 0.7 declares only resourceOperations).
        doc_changes = bool(we and we.document_changes) or bool(resource_ops)
        annotate = bool(we and we.change_annotation_support) and doc_changes
        on_disk: list[FileChange] = []
        operations: list[Any] = []
        plain: dict[str, Sequence[types.TextEdit]] = {}
        annotation_id = ANNOTATION if annotate else None
        for change in changes.files:
            uri = path_to_uri(session.workspace / change.path)
            if change.binary:
                on_disk.append(change)
                continue
            if change.status == "deleted":
                if doc_changes and types.ResourceOperationKind.Delete in resource_ops:
                    operations.append(types.DeleteFile(uri=uri, annotation_id=annotation_id))
                else:
                    on_disk.append(change)
                continue
            new_text = (change.new_content or b"").decode()
            if change.status == "added":
                if doc_changes and types.ResourceOperationKind.Create in resource_ops:
                    operations.append(
                        types.CreateFile(
                            uri=uri,
                            options=types.CreateFileOptions(overwrite=force, ignore_if_exists=not force),
                            annotation_id=annotation_id,
                        )
                    )
                    operations.append(self._doc_edit(uri, None, [self._edit(0, 0, new_text, annotation_id)]))
                else:
                    on_disk.append(change)
                continue
            edits = self._hunk_edits(change, host_text(self.server.workspace, uri), force, annotation_id)
            if doc_changes:
                operations.append(self._doc_edit(uri, open_version(self.server.workspace, uri), edits))
            else:
                plain[uri] = [types.TextEdit(range=e.range, new_text=e.new_text) for e in edits]
        if not operations and not plain:
            return None, on_disk
        if doc_changes:
            annotations = (
                {
                    ANNOTATION: types.ChangeAnnotation(
                        label="Sidehand",
                        needs_confirmation=True,
                        description="Changes made by the Sidehand agent",
                    )
                }
                if annotate
                else None
            )
            return types.WorkspaceEdit(document_changes=operations, change_annotations=annotations), on_disk
        return types.WorkspaceEdit(changes=plain), on_disk

    @staticmethod
    def _edit(
        line: int, end_line: int, text: str, annotation_id: str | None
    ) -> types.TextEdit | types.AnnotatedTextEdit:
        rng = types.Range(types.Position(line, 0), types.Position(end_line, 0))
        if annotation_id is not None:
            return types.AnnotatedTextEdit(range=rng, new_text=text, annotation_id=annotation_id)
        return types.TextEdit(range=rng, new_text=text)

    @staticmethod
    def _doc_edit(
        uri: str, version: int | None, edits: Sequence[types.TextEdit | types.AnnotatedTextEdit]
    ) -> types.TextDocumentEdit:
        return types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
            edits=list(edits),
        )

    def _hunk_edits(
        self, change: FileChange, current: str | None, force: bool, annotation_id: str | None
    ) -> list[types.TextEdit | types.AnnotatedTextEdit]:
        """One text edit per hunk (small edits keep the cursor and folds where they were), or one
        whole-text edit when the buffer no longer matches what the sandbox started from."""
        new_text = (change.new_content or b"").decode()
        if current is not None and current == base_text(change):
            return [
                self._edit(h.old_first, h.old_first + len(h.old_lines), "".join(h.new_lines), annotation_id)
                for h in parse_hunks(change.diff)
            ]
        if not force:
            raise conflict(
                f"{change.path} changed in the editor since the sandbox copied it; "
                "review it, then accept again with force to overwrite"
            )
        lines = (current or "").count("\n") + 1
        return [self._edit(0, lines, new_text, annotation_id)]

    async def reject(self, session: Session, params: p.ChangesParams) -> dict[str, Any]:
        """Revert the chosen files or hunks in the sandbox copy (the host is not touched)."""
        changes = await session.changes()
        chosen = select(changes, params)
        files: dict[str, bytes | None] = {}
        for change, hunks in chosen:
            if hunks is None:
                files[change.path] = await session.files.base_content(change.path)
                continue
            try:
                files[change.path] = revert_hunks((change.new_content or b"").decode(), hunks).encode()
            except HunkMismatch as exc:
                raise conflict(f"{change.shown_path}: {exc}") from None
        try:
            await session.files.put(files, reason="reject")
        except SidehandError as exc:
            raise rpc_error(exc) from None
        return {"reverted": [escape_path(p) for p in files]}


def register(server: SidehandServer) -> ChangeReview:
    """The `sidehand/changes/*` requests. Returns the review, which code actions offer changes with."""
    review = ChangeReview(server)

    @server.feature(p.CHANGES_LIST)
    async def changes_list(ls: SidehandServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return await review.list_changes(ls.session(args.session_id))

    @server.feature(p.CHANGES_ACCEPT)
    async def changes_accept(ls: SidehandServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ChangesParams, params)
        return await review.accept(ls.session(args.session_id), args)

    @server.feature(p.CHANGES_REJECT)
    async def changes_reject(ls: SidehandServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ChangesParams, params)
        return await review.reject(ls.session(args.session_id), args)

    return review
