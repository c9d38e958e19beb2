"""The Sidehand language server: pygls 2.x, the `sidehand/*` methods and standard LSP features.

Handlers never block the loop: turns run as tasks (the core's model calls and sandbox work are off
the loop already); only `sidehand/session/prompt` awaits a whole turn, asynchronously."""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from agent_lsp import __version__, handshake
from agent_lsp import protocol as p
from agent_lsp.change_review import ChangeReview
from agent_lsp.cli import REDACT
from agent_lsp.code_actions import CodeActionRunner, command_for, list_actions
from agent_lsp.documents import uri_to_path
from agent_lsp.sessions import SessionHub
from agent_lsp.settings import settings_from_options
from core.config import Settings
from core.sessions import SessionManager
from core.testing import TEST_LLM_ENV, test_llm_enabled

log = logging.getLogger(__name__)


class SidehandProtocol(LanguageServerProtocol):
    _server: SidehandServer

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        result.capabilities.experimental = handshake.EXPERIMENTAL
        return result

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        early = self._server.early
        if early is None or early.answered_id is None or msg_id != early.answered_id:
            super()._send_response(msg_id, result, error)
            return
        # `sidehand lsp` answered this `initialize` before pygls was loaded: not again. The two
        # answers must agree (tests/agent_lsp/test_handshake.py): say so loudly if they do not.
        self._server.early = None
        ours = self._converter.unstructure(result) if error is None else error
        if ours != early.result:
            log.error(
                "the early initialize answer differs from the server's: update agent_lsp/handshake.py "
                "(sent %s, the server computed %s)",
                early.result,
                ours,
            )


class SidehandServer(LanguageServer):
    def __init__(self, early: handshake.EarlyStart | None = None) -> None:
        super().__init__("sidehand", __version__, protocol_cls=SidehandProtocol)
        self.early = early  # the `initialize` answered before this server existed, if any
        self.sidehand_client = False
        self.settings: Settings | None = None
        self.settings_problems: list[str] = []
        self._manager: SessionManager | None = None
        self.hub = SessionHub(self)
        self.review = ChangeReview(self)
        self.actions = CodeActionRunner(self)
        self.init_options: Any = None

    # ---- state -----------------------------------------------------------------------------
    def configure(self, params: types.InitializeParams) -> None:
        options = params.initialization_options
        self.init_options = options
        declared = isinstance(options, dict) and bool(options.get("sidehand"))
        experimental = params.capabilities.experimental
        self.sidehand_client = declared or (
            isinstance(experimental, dict) and bool(experimental.get("sidehand"))
        )

    def load_settings(self) -> Settings:
        if self.settings is None:
            self.settings, self.settings_problems = settings_from_options(self.init_options)
            REDACT.add(self.settings.secrets())
        return self.settings

    def has_manager(self) -> bool:
        return self._manager is not None

    def manager(self) -> SessionManager:
        if self._manager is None:
            settings = self.load_settings()
            if test_llm_enabled():
                from core.testing.fake_manager import build_fake_manager

                log.warning(
                    "%s is set: using the scripted in-process model and sandbox (tests only)", TEST_LLM_ENV
                )
                self._manager = build_fake_manager(settings)
            else:
                from sidehand.wiring import build_manager

                self._manager = build_manager(settings)
        return self._manager

    def workspace_root(self) -> Path | None:
        folders = self.workspace.folders
        if folders:
            return uri_to_path(next(iter(folders.values())).uri)
        root = self.workspace.root_uri
        return uri_to_path(root) if root else None

    def client_can_apply_edit(self) -> bool:
        caps = self.client_capabilities.workspace
        return bool(caps and caps.apply_edit)

    def show(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))


def build_server(early: handshake.EarlyStart | None = None) -> SidehandServer:
    server = SidehandServer(early)

    @server.feature(types.INITIALIZE)
    def initialize(ls: SidehandServer, params: types.InitializeParams) -> None:
        ls.configure(params)

    @server.feature(types.INITIALIZED)
    def initialized(ls: SidehandServer, params: types.InitializedParams) -> None:
        ls.load_settings()
        for problem in ls.settings_problems:
            ls.show(types.MessageType.Error, f"Sidehand settings: {problem}")
        if not test_llm_enabled():
            from sidehand.wiring import prefetch

            prefetch()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: SidehandServer, params: None) -> None:
        await ls.hub.aclose()

    # ---- sidehand/* ------------------------------------------------------------------------
    @server.feature(p.SESSION_NEW)
    async def session_new(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await ls.hub.new(p.parse(p.NewSessionParams, params))

    @server.feature(p.SESSION_PROMPT)
    async def session_prompt(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await ls.hub.prompt(p.parse(p.PromptParams, params))

    @server.feature(p.SESSION_CANCEL)
    async def session_cancel(ls: SidehandServer, params: Any) -> None:
        await ls.hub.cancel(p.parse(p.SessionParams, params))

    @server.feature(p.SESSION_LIST)
    def session_list(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return ls.hub.list()

    @server.feature(p.SESSION_LOAD)
    async def session_load(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await ls.hub.load(p.parse(p.SessionParams, params))

    @server.feature(p.SESSION_FORK)
    async def session_fork(ls: SidehandServer, params: Any) -> dict[str, Any]:
        return await ls.hub.fork(p.parse(p.ForkParams, params))

    @server.feature(p.SESSION_CLOSE)
    async def session_close(ls: SidehandServer, params: Any) -> None:
        await ls.hub.close(p.parse(p.SessionParams, params))

    @server.feature(p.CHANGES_LIST)
    async def changes_list(ls: SidehandServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return await ls.review.list_changes(ls.hub.get(args.session_id))

    @server.feature(p.CHANGES_ACCEPT)
    async def changes_accept(ls: SidehandServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ChangesParams, params)
        return await ls.review.accept(ls.hub.get(args.session_id), args)

    @server.feature(p.CHANGES_REJECT)
    async def changes_reject(ls: SidehandServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ChangesParams, params)
        return await ls.review.reject(ls.hub.get(args.session_id), args)

    # ---- standard LSP ----------------------------------------------------------------------
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=list(p.CODE_ACTION_KINDS), resolve_provider=True),
    )
    def code_action(ls: SidehandServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        caps = ls.client_capabilities.text_document
        resolve = bool(caps and caps.code_action and caps.code_action.resolve_support)
        return list_actions(params, resolve)

    @server.feature(types.CODE_ACTION_RESOLVE)
    def code_action_resolve(ls: SidehandServer, action: types.CodeAction) -> types.CodeAction:
        action.command = command_for(action)
        return action

    @server.command(p.RUN_CODE_ACTION)
    async def run_code_action(ls: SidehandServer, *args: Any) -> dict[str, Any]:
        if len(args) != 1:
            from pygls.exceptions import JsonRpcInvalidParams

            raise JsonRpcInvalidParams(message=f"{p.RUN_CODE_ACTION} takes one argument object")
        return await ls.actions.run(p.parse(p.RunCodeActionArgs, args[0]))

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    async def progress_cancel(ls: SidehandServer, params: types.WorkDoneProgressCancelParams) -> None:
        await ls.actions.cancel_progress(str(params.token))

    return server
