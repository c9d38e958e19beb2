"""The language server as a user's editor runs it: a subprocess driven by pytest-lsp's typed client.

The model and sandbox are the in-process fakes (the server's own entry point given a fake manager
factory: tests/support/fake_server.py), so no Docker or LLM is needed; the script file may be
rewritten between sessions. `fakes=False` runs the real `sidehand lsp`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from agent_lsp.protocol import to_plain

REAL_SERVER = [sys.executable, "-m", "agent_lsp.cli"]


def fake_server(script: Path) -> list[str]:
    """The language server's own entry point, with sessions on the fakes."""
    return [sys.executable, "-m", "tests.support.fake_server", "lsp", "--script", str(script)]


TIMEOUT = 10.0

PermissionAnswer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class Editor:
    """The client side of a test: requests, the update stream, permission answers, applied edits."""

    client: LanguageClient
    workspace: Path
    script: Path
    updates: list[dict[str, Any]] = field(default_factory=list)
    sandbox_statuses: list[dict[str, Any]] = field(default_factory=list)
    permissions: list[dict[str, Any]] = field(default_factory=list)
    edits: list[Any] = field(default_factory=list)
    message_requests: list[types.ShowMessageRequestParams] = field(default_factory=list)
    answer_permission: PermissionAnswer | None = None
    message_answer: str | None = "Allow once"
    apply_edits: bool = True
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def write_script(self, turns: list[dict[str, Any]]) -> None:
        self.script.write_text(json.dumps(turns))

    async def request(self, method: str, params: Any = None) -> Any:
        send: Any = self.client.protocol.send_request_async  # untyped in pytest-lsp
        return to_plain(await asyncio.wait_for(send(method, params), TIMEOUT))

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        what: str = "condition",
        *,
        notification: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        """Until `predicate()` holds, looked at again whenever our handlers record something, or,
        for what pytest-lsp records itself (`window/showMessage`, `$/progress`), when a
        `notification` of that method arrives. The wake-ups are set up before each look, so none
        is missed."""

        async def watch() -> None:
            heard: asyncio.Future[Any] | None = None
            while True:
                self.changed.clear()
                changed = asyncio.ensure_future(self.changed.wait())
                wakers: list[asyncio.Future[Any]] = [changed]
                if notification is not None:
                    # Never cancelled: pytest-lsp would then fail to resolve it. A new wait for the
                    # same method replaces it, unresolved.
                    if heard is None or heard.done():
                        heard = self.client.protocol.wait_for_notification_async(notification)
                    wakers.append(heard)
                try:
                    if predicate():
                        return
                    await asyncio.wait(wakers, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()

        try:
            await asyncio.wait_for(watch(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    def kinds(self, session_id: str) -> list[str]:
        return [u["update"]["sessionUpdate"] for u in self.updates if u["sessionId"] == session_id]

    def notify(self) -> None:
        self.changed.set()


def make_client(editor_ref: list[Editor]) -> LanguageClient:
    client = pytest_lsp.make_test_lsp_client()

    @client.feature(  # type: ignore[untyped-decorator]
        "sidehand/session/update"
    )
    def on_update(ls: LanguageClient, params: Any) -> None:
        editor_ref[0].updates.append(_plain(params))
        editor_ref[0].notify()

    @client.feature(  # type: ignore[untyped-decorator]
        "sidehand/sandbox/status"
    )
    def on_sandbox_status(ls: LanguageClient, params: Any) -> None:
        editor_ref[0].sandbox_statuses.append(_plain(params))
        editor_ref[0].notify()

    @client.feature(  # type: ignore[untyped-decorator]
        "sidehand/session/requestPermission"
    )
    async def on_permission(ls: LanguageClient, params: Any) -> Any:
        editor = editor_ref[0]
        request = _plain(params)
        editor.permissions.append(request)
        editor.notify()
        if editor.answer_permission is not None:
            return await editor.answer_permission(request)
        return {"outcome": {"outcome": "selected", "optionId": "allow_once"}}

    @client.feature(  # type: ignore[untyped-decorator]
        types.WORKSPACE_APPLY_EDIT
    )
    def on_apply_edit(
        ls: LanguageClient, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult:
        editor = editor_ref[0]
        editor.edits.append(params.edit)
        editor.notify()
        return types.ApplyWorkspaceEditResult(applied=editor.apply_edits)

    @client.feature(  # type: ignore[untyped-decorator]
        types.WINDOW_SHOW_MESSAGE_REQUEST
    )
    def on_message_request(
        ls: LanguageClient, params: types.ShowMessageRequestParams
    ) -> types.MessageActionItem | None:
        editor = editor_ref[0]
        editor.message_requests.append(params)
        editor.notify()
        return types.MessageActionItem(title=editor.message_answer) if editor.message_answer else None

    return client


def _plain(value: Any) -> Any:
    return to_plain(value)


async def start_editor(
    tmp_path: Path,
    *,
    options: dict[str, Any] | None = None,
    capabilities: types.ClientCapabilities | None = None,
    extra_env: dict[str, str] | None = None,
    fakes: bool = True,
    command: list[str] | None = None,
) -> tuple[Editor, LanguageClient]:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    script = tmp_path / "script.json"
    script.write_text("[]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    # The fakes, or else the real path: litellm to a model server and the Docker sandbox.
    command = command or (fake_server(script) if fakes else REAL_SERVER)
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        SIDEHAND_SESSIONS_DIR=str(tmp_path / "sessions"),
        SIDEHAND_CONFIG=str(tmp_path / "no-config.toml"),
        SIDEHAND_USER_SKILLS_DIR=str(tmp_path / "no-user-skills"),
        SIDEHAND_MCP_CONFIG=str(tmp_path / "no-mcp.json"),
        **(extra_env or {}),
    )
    ref: list[Editor] = []
    config = ClientServerConfig(
        server_command=command, client_factory=lambda: make_client(ref), server_env=env
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    editor = Editor(client, workspace, script)
    ref.append(editor)
    caps = capabilities or pytest_lsp.client_capabilities("visual-studio-code")
    await asyncio.wait_for(
        client.initialize_session(
            types.InitializeParams(
                capabilities=caps,
                root_uri=workspace.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
                initialization_options=options
                if options is not None
                else {"sidehand": {"protocolVersion": 1}},
            )
        ),
        TIMEOUT,
    )
    return editor, client


def lazy_command_capabilities() -> types.ClientCapabilities:
    """VS Code's capabilities, resolving `command` lazily too: the server then lists code actions
    without it (pytest-lsp's client would read a code action that has a command as a Command).
    Neovim's test covers the other case, a client that resolves only `edit`."""
    caps = pytest_lsp.client_capabilities("visual-studio-code")
    action = caps.text_document.code_action if caps.text_document else None
    assert action is not None and action.resolve_support is not None
    action.resolve_support.properties = [*action.resolve_support.properties, "command"]
    return caps


@pytest.fixture
async def editor(tmp_path: Path) -> AsyncIterator[Editor]:
    ed, client = await start_editor(
        tmp_path,
        options={"sidehand": {"protocolVersion": 1}, "approvalMode": "never"},
        capabilities=lazy_command_capabilities(),
    )
    yield ed
    await asyncio.wait_for(client.shutdown_session(), TIMEOUT)
    await stop(client)


def open_doc(editor: Editor, name: str, text: str, version: int = 1) -> str:
    path = editor.workspace / name
    if not path.exists():
        path.write_text(text)
    uri = path.as_uri()
    editor.client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )
    return uri


async def stop(client: LanguageClient) -> None:
    halt: Any = client.stop  # untyped in pytest-lsp
    await halt()
