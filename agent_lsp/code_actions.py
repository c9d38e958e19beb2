"""Standard LSP for editors without the extension: code actions on a selection (Fix, Explain, Write
tests, Refactor, Document). Listing is cheap (no data work); `codeAction/resolve` attaches the
`sidehand.runCodeAction` command; running it starts a session whose context is the selection, the
document's current text and the diagnostics in range, reports $/progress, and offers the result
through workspace/applyEdit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from lsprotocol import types

from agent_lsp import protocol as p
from agent_lsp.change_review import ChangeReview
from agent_lsp.documents import host_text
from agent_lsp.errors import invalid_params
from agent_lsp.server import SidehandServer
from agent_lsp.sessions import SessionHub
from core.events import ContextItem, Event, ToolCallEvent, TurnEnded
from core.session import Session

log = logging.getLogger(__name__)

ACTIONS: dict[str, tuple[str, str, str]] = {
    # id: (title, LSP kind, instruction)
    "fix": ("Fix", types.CodeActionKind.QuickFix, "Fix the problems in the selected code"),
    "explain": ("Explain", "sidehand.explain", "Explain what the selected code does; change nothing"),
    "tests": ("Write tests", "sidehand.tests", "Write tests for the selected code"),
    "refactor": ("Refactor", types.CodeActionKind.RefactorRewrite, "Refactor the selected code for clarity"),
    "document": ("Document", "sidehand.document", "Document the selected code (docstrings, comments)"),
}


def range_json(r: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def list_actions(params: types.CodeActionParams, resolve: bool) -> list[types.CodeAction]:
    """What the user can ask for here. With resolve support the command is attached on resolve."""
    out = []
    diagnostics = list(params.context.diagnostics)
    for action_id, (title, kind, _) in ACTIONS.items():
        data = {"action": action_id, "uri": params.text_document.uri, "range": range_json(params.range)}
        action = types.CodeAction(title=f"Sidehand: {title}", kind=kind, data=data)
        if action_id == "fix" and diagnostics:
            action.diagnostics = diagnostics
        if not resolve:
            action.command = command_for(action)
        out.append(action)
    return out


def command_for(action: types.CodeAction) -> types.Command:
    data = dict(action.data or {})
    if action.diagnostics:
        data["diagnostics"] = [
            {"range": range_json(d.range), "message": d.message, "severity": d.severity}
            for d in action.diagnostics
        ]
    return types.Command(title=action.title, command=p.RUN_CODE_ACTION, arguments=[data])


def instruction(args: p.RunCodeActionArgs, selection: str, diagnostics: list[str]) -> str:
    _title, _, what = ACTIONS[args.action]
    rng = args.range
    text = f"{what} in {args.uri} (lines {rng.start.line + 1}-{rng.end.line + 1}):\n\n```\n{selection}\n```\n"
    if diagnostics:
        text += "\nDiagnostics in this range:\n" + "\n".join(f"- {d}" for d in diagnostics) + "\n"
    return text


class CodeActionRunner:
    def __init__(self, server: SidehandServer, hub: SessionHub, review: ChangeReview) -> None:
        self.server = server
        self.hub = hub
        self.review = review
        self.progress: dict[str, str] = {}  # progress token -> session id

    async def run(self, args: p.RunCodeActionArgs) -> dict[str, Any]:
        """Start the session and its turn; returns at once (the turn runs as a task)."""
        hub = self.hub
        workspace = self.server.workspace
        full = host_text(workspace, args.uri)
        rng = types.Range(
            types.Position(args.range.start.line, args.range.start.character),
            types.Position(args.range.end.line, args.range.end.character),
        )
        selection = (
            workspace.get_text_document(args.uri).text_in_client_range(rng) if full is not None else ""
        )
        diagnostics = [
            f"line {d.get('range', {}).get('start', {}).get('line', 0) + 1}: {d.get('message', '')}"
            for d in args.diagnostics
        ]
        context = [
            ContextItem(kind="selection", uri=args.uri, text=selection, range=args.range.as_tuple()),
            ContextItem(kind="file", uri=args.uri, text=full),
        ]
        result = await hub.new(p.NewSessionParams())
        session = self.server.session(result["sessionId"])
        self.server.spawn(
            self._turn(session, instruction(args, selection, diagnostics), context, args.action)
        )
        return {"sessionId": session.id}

    async def _turn(self, session: Session, text: str, context: list[ContextItem], action: str) -> None:
        token = await self._begin_progress(session, ACTIONS[action][0])
        unsubscribe = session.subscribe(lambda e: self._report(token, e))
        try:
            end = await self.hub.run_turn(session, text, context)
        except Exception as exc:
            log.warning("code action %s failed", action, exc_info=True)
            self._end_progress(token, "failed")
            self.server.show(types.MessageType.Error, f"Sidehand: {exc}")
            return
        finally:
            unsubscribe()
        self._end_progress(token, end.stop_reason.replace("_", " "))
        if await self._offer(session, end):
            # One-shot: once its changes are accepted or declined (or there are none), the code
            # action's session is closed and its sandbox removed (its log stays, to load later),
            # unless the user went on with it meanwhile.
            await self.hub.close_if_idle(session)

    async def _offer(self, session: Session, end: TurnEnded) -> bool:
        """Offer the changes through workspace/applyEdit. True when that settled them; False when
        they are left for later review (the sandbox then stops once idle)."""
        if end.stop_reason == "cancelled":
            return True
        if end.message:
            self.server.show(types.MessageType.Info, f"Sidehand: {end.message}")
        changes = await session.changes()
        if not changes.files:
            return True
        if not self.server.client_can_apply_edit():
            self.server.show(
                types.MessageType.Warning,
                f"Sidehand changed {changes.summary()}; this editor cannot apply workspace edits "
                f"(the patch is in {session.store.patch_path(session.id)})",
            )
            return False
        try:
            result = await self.review.apply_through_editor(session, changes, force=False)
        except Exception as exc:
            self.server.show(types.MessageType.Warning, f"Sidehand: the changes were not applied: {exc}")
            return False
        if not result["applied"]:
            self.server.show(types.MessageType.Info, "Sidehand: the changes were declined")
        return True

    async def _begin_progress(self, session: Session, title: str) -> str | None:
        caps = self.server.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return None
        token = f"sidehand-{uuid.uuid4().hex[:12]}"
        try:
            await asyncio.wait_for(self.server.work_done_progress.create_async(token), 10)
        except Exception:
            log.warning("the client did not create a progress token", exc_info=True)
            return None
        self.progress[token] = session.id
        self.server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title=f"Sidehand: {title}", cancellable=True, message="working"),
        )
        return token

    def _report(self, token: str | None, event: Event) -> None:
        if token is not None and isinstance(event, ToolCallEvent):
            self.server.work_done_progress.report(token, types.WorkDoneProgressReport(message=event.title))

    def _end_progress(self, token: str | None, message: str) -> None:
        if token is not None:
            self.progress.pop(token, None)
            self.server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    async def cancel_progress(self, token: str) -> None:
        """window/workDoneProgress/cancel: cancel the session's turn."""
        session_id = self.progress.get(token)
        if session_id is None:
            return
        try:
            await self.server.session(session_id).cancel()
        except Exception:
            log.warning("cancelling session %s failed", session_id, exc_info=True)


def resolves_command(server: SidehandServer) -> bool:
    """Whether the client fills in `command` through codeAction/resolve: only if it lists it in
    resolveSupport.properties (Neovim 0.7 lists only `edit`: it gets the command in the list)."""
    caps = server.client_capabilities.text_document
    support = caps.code_action.resolve_support if caps and caps.code_action else None
    return support is not None and "command" in support.properties


def register(server: SidehandServer, hub: SessionHub, review: ChangeReview) -> None:
    """textDocument/codeAction, codeAction/resolve, the run command and progress cancellation."""
    runner = CodeActionRunner(server, hub, review)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=list(p.CODE_ACTION_KINDS), resolve_provider=True),
    )
    def code_action(ls: SidehandServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return list_actions(params, resolves_command(ls))

    @server.feature(types.CODE_ACTION_RESOLVE)
    def code_action_resolve(ls: SidehandServer, action: types.CodeAction) -> types.CodeAction:
        action.command = command_for(action)
        return action

    @server.command(p.RUN_CODE_ACTION)
    async def run_code_action(ls: SidehandServer, *args: Any) -> dict[str, Any]:
        if len(args) != 1:
            raise invalid_params(f"{p.RUN_CODE_ACTION} takes one argument object")
        return await runner.run(p.parse(p.RunCodeActionArgs, args[0]))

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    async def progress_cancel(ls: SidehandServer, params: types.WorkDoneProgressCancelParams) -> None:
        await runner.cancel_progress(str(params.token))
