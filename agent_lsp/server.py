"""The language server's state: pygls 2.x's `LanguageServer` with the settings, the session
manager and the background tasks. The features (`lifecycle`, `sessions`, `change_review`,
`code_actions`) register their handlers on it (`agent_lsp.build.build_server`); this module
imports none of them.

Handlers never block the loop: turns run as tasks (the core's model calls and sandbox work are off
the loop already); only `sidehand/session/prompt` awaits a whole turn, asynchronously."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from agent_lsp import handshake
from agent_lsp.documents import uri_to_path
from agent_lsp.errors import rpc_error
from agent_lsp.settings import settings_from_options
from core.config import Settings
from core.errors import SidehandError
from core.redaction import RedactSecrets
from core.session import Session
from core.sessions import ManagerFactory, SessionManager
from core.version import VERSION

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
    """`manager_factory` builds the session manager once settings are known (the real one wires the
    Docker sandbox and litellm); `warm_up`, if given, starts loading what sessions need in the
    background once the client is initialized. `redact` is the log filter of the entry point:
    the API key is added to it when the settings arrive."""

    def __init__(
        self,
        manager_factory: ManagerFactory,
        *,
        redact: RedactSecrets,
        warm_up: Callable[[], object] | None = None,
        early: handshake.EarlyStart | None = None,
    ) -> None:
        super().__init__("sidehand", VERSION, protocol_cls=SidehandProtocol)
        self.early = early  # the `initialize` answered before this server existed, if any
        self.redact = redact
        self.warm_up = warm_up
        self.sidehand_client = False
        self.settings: Settings | None = None
        self.settings_problems: list[str] = []
        self.init_options: Any = None
        self._manager_factory = manager_factory
        self._manager: SessionManager | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- settings and sessions ---------------------------------------------------------------
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
            self.redact.add(self.settings.secrets())
        return self.settings

    def manager(self) -> SessionManager:
        if self._manager is None:
            self._manager = self._manager_factory(self.load_settings())
        return self._manager

    def live_manager(self) -> SessionManager | None:
        """The session manager if one was made (None before the first session)."""
        return self._manager

    def session(self, session_id: str) -> Session:
        """A live session, or the JSON-RPC error for an unknown one."""
        try:
            return self.manager().get(session_id)
        except SidehandError as exc:
            raise rpc_error(exc) from None

    # ---- the client --------------------------------------------------------------------------
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

    # ---- background work ---------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` as a task the server keeps (and cancels at shutdown)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._manager is not None:
            await self._manager.aclose()
