"""The session adapter: `sidehand/session/*` requests onto the core's SessionManager, session
events onto `sidehand/session/update` notifications, approvals onto permission requests."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from agent_lsp import protocol as p
from agent_lsp.buffers import mirror_open_buffers
from agent_lsp.documents import host_text, uri_to_path
from agent_lsp.errors import invalid_params, rpc_error
from agent_lsp.server import SidehandServer
from agent_lsp.updates import UpdateTranslator
from core.errors import SessionError, SidehandError
from core.events import (
    ApprovalRejected,
    ApprovalRequested,
    ContextItem,
    Event,
    Notice,
    TurnEnded,
)
from core.messages import decode_arguments
from core.policy import ApprovalDecision, ApprovalOption, approval_options
from core.session import Session
from core.sessions import SessionInfo

log = logging.getLogger(__name__)

NOTICE_TYPES = {
    "info": types.MessageType.Info,
    "warning": types.MessageType.Warning,
    "error": types.MessageType.Error,
}


def info_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "sessionId": info.id,
        "cwd": info.workspace,
        "title": info.title,
        "created": info.created,
        "updated": info.updated,
        "model": info.model,
        "status": info.status,
        "live": info.live,
        "parent": info.parent,
    }


def options_for(event: ApprovalRequested) -> list[ApprovalOption]:
    """The answers offered for this request (the same in every front: core.policy.options)."""
    return approval_options(event.tool, decode_arguments(event.arguments), event.risk)


class SessionHub:
    def __init__(self, server: SidehandServer) -> None:
        self.server = server
        self.translators: dict[str, UpdateTranslator] = {}
        self._asking: dict[str, str] = {}  # call id -> our outgoing request id
        # Sessions this server closed (a prompt opens them again): its close's end, and how many
        # updates the session had sent (a client drops a number it has seen).
        self._closed: dict[str, tuple[asyncio.Event, int]] = {}
        self._prompting: collections.Counter[str] = collections.Counter()  # prompts in flight

    def attach(self, session: Session, *, sent: int = 0) -> UpdateTranslator:
        """Send the session's events to the client as updates, numbered on from `sent` (the
        updates a closed session had sent, when it is opened again)."""
        if (existing := self.translators.get(session.id)) is not None:
            return existing
        translator = UpdateTranslator(
            session.id, session.workspace, lambda msg: self.server.protocol.notify(p.SESSION_UPDATE, msg)
        )
        translator.seq = sent
        self.translators[session.id] = translator

        def on_event(event: Event) -> None:
            if self.server.sidehand_client:
                translator.on_event(event)
            if isinstance(event, ApprovalRequested):
                self.server.spawn(self.ask(session, event))
            if isinstance(event, ApprovalRejected) and event.cancelled:
                self._withdraw(event.call_id)
            if isinstance(event, Notice):  # live only: a replayed session does not repeat them
                self.server.show(NOTICE_TYPES[event.level], f"Sidehand: {event.message}")

        session.subscribe(on_event)
        return translator

    # ---- requests --------------------------------------------------------------------------
    async def new(self, params: p.NewSessionParams) -> dict[str, Any]:
        cwd = uri_to_path(params.cwd) if params.cwd else self.server.workspace_root()
        if cwd is None:
            raise invalid_params("no workspace: pass `cwd`, or open a folder (rootUri / workspaceFolders)")
        overrides: dict[str, Any] = {"model": params.model, "approval_mode": params.approval_mode}
        try:
            session = await self.server.manager().create(cwd, **overrides)
        except SidehandError as exc:
            raise rpc_error(exc) from None
        self.attach(session)
        return {"sessionId": session.id, "cwd": str(session.workspace), "model": session.settings.model}

    async def prompt(self, params: p.PromptParams) -> dict[str, Any]:
        self._prompting[params.session_id] += 1  # before any await: close_if_idle sees it
        try:
            session = await self._reopened(params.session_id)
            context = [self.context_item(c) for c in params.context]
            end = await self.run_turn(session, params.prompt, context)
        finally:
            self._prompting[params.session_id] -= 1
            if not self._prompting[params.session_id]:
                del self._prompting[params.session_id]
        return {
            "stopReason": end.stop_reason,
            "message": end.message,
            "changes": list(end.changes),
            "iterations": end.iterations,
        }

    async def run_turn(self, session: Session, text: str, context: list[ContextItem]) -> TurnEnded:
        self.attach(session)
        try:
            await mirror_open_buffers(self.server, session)
        except Exception:
            log.warning(
                "session %s: could not mirror the open buffers into the sandbox", session.id, exc_info=True
            )
        try:
            turn = asyncio.ensure_future(session.prompt(text, context))
            try:
                return await asyncio.shield(turn)
            except asyncio.CancelledError:  # the client cancelled the request: stop the turn too
                await session.cancel()
                raise
        except SidehandError as exc:
            raise rpc_error(exc) from None

    def context_item(self, item: p.ContextItemParams) -> ContextItem:
        text = item.text
        if text is None:
            full = host_text(self.server.workspace, item.uri)
            if full is not None and item.range is not None:
                doc = self.server.workspace.get_text_document(item.uri)
                rng = types.Range(
                    types.Position(item.range.start.line, item.range.start.character),
                    types.Position(item.range.end.line, item.range.end.character),
                )
                text = doc.text_in_client_range(rng)
            else:
                text = full
        return ContextItem(
            kind=item.type,
            uri=item.uri,
            text=text,
            range=item.range.as_tuple() if item.range else None,
        )

    async def cancel(self, params: p.SessionParams) -> None:
        await self.server.session(params.session_id).cancel()

    def list(self) -> dict[str, Any]:
        return {"sessions": [info_json(i) for i in self.server.manager().list()]}

    async def _reopened(self, session_id: str) -> Session:
        """The live session; one this server closed itself (a code action's, once its changes were
        settled) is opened again from its log, so its conversation can go on in the panel."""
        closed = self._closed.get(session_id)
        if closed is None:
            return self.server.session(session_id)
        closing, sent = closed
        await closing.wait()  # one log, one writer: the close ends first
        try:
            session = await self.server.manager().load(session_id)
        except SidehandError as exc:
            raise rpc_error(exc) from None
        self._closed.pop(session_id, None)
        self.attach(session, sent=sent)
        return session

    async def load(self, params: p.SessionParams) -> dict[str, Any]:
        manager = self.server.manager()
        try:
            session = await manager.load(params.session_id)
        except SidehandError as exc:
            raise rpc_error(exc) from None
        translator = self.attach(session)
        replayed = 0
        for event in await asyncio.to_thread(session.store.events, session.id):
            translator.on_event(event)
            replayed += 1
        return {
            "sessionId": session.id,
            "cwd": str(session.workspace),
            "replayed": replayed,
            "status": session.state.status,
        }

    async def fork(self, params: p.ForkParams) -> dict[str, Any]:
        try:
            session = await self.server.manager().fork(params.session_id, params.upto_seq)
        except SidehandError as exc:
            raise rpc_error(exc) from None
        self.attach(session)
        return {"sessionId": session.id, "parent": params.session_id, "cwd": str(session.workspace)}

    async def close(self, params: p.SessionParams) -> None:
        await self._close(self.server.session(params.session_id))

    async def close_if_idle(self, session: Session) -> bool:
        """Close a session no turn runs in and no prompt is on its way to (a code action's, once
        settled: the user may have gone on with it in the panel meanwhile). True when closed."""
        if session.busy or self._prompting[session.id]:
            return False
        await self._close(session)
        return True

    async def _close(self, session: Session) -> None:
        translator = self.translators.pop(session.id, None)
        closing = asyncio.Event()
        self._closed[session.id] = (closing, translator.seq if translator else 0)  # a prompt reopens it
        try:
            await self.server.manager().close(session.id)
        finally:
            closing.set()

    # ---- approvals -------------------------------------------------------------------------
    async def ask(self, session: Session, event: ApprovalRequested) -> None:
        try:
            if self.server.sidehand_client:
                option = await self._ask_sidehand(session, event)
            else:
                option = await self._ask_message(session, event)
        except JsonRpcRequestCancelled:  # we withdrew the request (the turn was cancelled)
            return
        except Exception:
            log.warning("session %s: the permission request failed; rejecting", session.id, exc_info=True)
            option = "reject"
        if option == "cancelled":
            if event.call_id in session.pending_approvals:
                await session.cancel()
            return
        decision = next((o.decision for o in options_for(event) if o.id == option), None)
        if decision is None or option == "reject":
            decision = ApprovalDecision(allow=False, reason="rejected in the editor")
        with contextlib.suppress(SessionError):  # the turn ended meanwhile: the answer is moot
            session.decide(event.call_id, decision)

    async def _ask_sidehand(self, session: Session, event: ApprovalRequested) -> str:
        offered = options_for(event)
        options = [{"optionId": o.id, "name": o.label, "kind": o.kind} for o in offered]
        translator = self.translators[session.id]
        call = translator._call_update(event.call_id, "pending", full=True)
        params = {
            "sessionId": session.id,
            "toolCall": call,
            "risk": event.risk,
            "reason": event.reason,
            "options": options,
        }
        msg_id = f"sidehand-permission-{uuid.uuid4().hex[:12]}"
        self._asking[event.call_id] = msg_id
        try:
            result = await self.server.protocol.send_request_async(
                p.REQUEST_PERMISSION, params, msg_id=msg_id
            )
        finally:
            self._asking.pop(event.call_id, None)
        result = p.to_plain(result)
        outcome = result.get("outcome") if isinstance(result, dict) else None
        if not isinstance(outcome, dict) or outcome.get("outcome") == "cancelled":
            return "cancelled"
        option = outcome.get("optionId")
        return option if option in {o.id for o in offered} else "reject"

    async def _ask_message(self, session: Session, event: ApprovalRequested) -> str:
        args = decode_arguments(event.arguments)
        detail = args.get("command") or args.get("path") or event.arguments
        offered = {o.label: o.id for o in options_for(event)}
        reply = await self.server.window_show_message_request_async(
            types.ShowMessageRequestParams(
                type=types.MessageType.Warning,
                message=f"Sidehand wants to run {event.tool}: {detail} ({event.risk} risk: {event.reason})",
                actions=[types.MessageActionItem(title=label) for label in offered],
            )
        )
        return offered.get(reply.title, "reject") if reply is not None else "reject"

    def _withdraw(self, call_id: str) -> None:
        """The turn was cancelled while we asked: tell the client its answer is no longer wanted."""
        msg_id = self._asking.pop(call_id, None)
        if msg_id is not None:
            self.server.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))


def register(server: SidehandServer) -> SessionHub:
    """The `sidehand/session/*` requests. Returns the hub the other features start turns with."""
    hub = SessionHub(server)

    @server.feature(p.SESSION_NEW)
    async def session_new(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await hub.new(p.parse(p.NewSessionParams, params))

    @server.feature(p.SESSION_PROMPT)
    async def session_prompt(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await hub.prompt(p.parse(p.PromptParams, params))

    @server.feature(p.SESSION_CANCEL)
    async def session_cancel(ls: SidehandServer, params: Any) -> None:
        await hub.cancel(p.parse(p.SessionParams, params))

    @server.feature(p.SESSION_LIST)
    def session_list(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return hub.list()

    @server.feature(p.SESSION_LOAD)
    async def session_load(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await hub.load(p.parse(p.SessionParams, params))

    @server.feature(p.SESSION_FORK)
    async def session_fork(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await hub.fork(p.parse(p.ForkParams, params))

    @server.feature(p.SESSION_CLOSE)
    async def session_close(ls: SidehandServer, params: Any) -> None:
        await hub.close(p.parse(p.SessionParams, params))

    return hub
