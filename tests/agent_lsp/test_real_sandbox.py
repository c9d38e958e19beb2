"""The language server on the real path (the `sidehand lsp` command, litellm to an HTTP model
server, the Docker sandbox), for what the in-memory fakes would hide: an unsaved buffer is the base
of its file, code actions do not leave sandboxes behind, SIGTERM interrupts and cleans up."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from lsprotocol import types

from agent_lsp.protocol import to_plain
from core.store import SessionStore
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from tests.agent_lsp.conftest import TIMEOUT, Editor, lazy_command_capabilities, open_doc, start_editor, stop
from tests.agent_lsp.test_code_actions_and_changes import apply_text_edits
from tests.support.waits import eventually

pytestmark = pytest.mark.docker

TURN_TIMEOUT = 90.0  # litellm's import and the sandbox start come first on the real path


@contextlib.asynccontextmanager
async def real_editor(tmp_path: Path, model: ScriptedLLMServer) -> AsyncIterator[Editor]:
    editor, client = await start_editor(
        tmp_path,
        options={
            "sidehand": {"protocolVersion": 1},
            "model": "openai/scripted",
            "apiBase": model.base_url,
            "apiKey": "sk-test-not-a-real-key",
            "approvalMode": "never",
        },
        capabilities=lazy_command_capabilities(),
        fakes=False,
    )
    try:
        yield editor
    finally:
        server = client._server  # the `sidehand lsp` process pytest-lsp started
        if server is not None and server.returncode is None:
            await asyncio.wait_for(client.shutdown_session(), TIMEOUT)
        await stop(client)


async def slow_request(editor: Editor, method: str, params: Any) -> Any:
    send: Any = editor.client.protocol.send_request_async  # untyped in pytest-lsp
    return to_plain(await asyncio.wait_for(send(method, params), TURN_TIMEOUT))


def sandboxes_of(session_id: str) -> list[Any]:
    """The session's containers: made for it, or a ready one it took (then renamed after it)."""
    return list(docker.from_env().containers.list(all=True, filters={"name": f"sidehand-{session_id}-"}))


def sandboxes_of_process(pid: int) -> list[Any]:
    return list(docker.from_env().containers.list(all=True, filters={"label": f"sidehand.pid={pid}"}))


async def test_an_unsaved_buffer_is_the_base_and_accepting_edits_the_buffer(tmp_path: Path) -> None:
    disk = "def add(a, b):\n    return a - b\n"
    unsaved = "def add(a, b):\n    # unsaved note\n    return a - b\n"
    fix = {"command": "str_replace", "path": "/workspace/calc.py", "old_str": "a - b", "new_str": "a + b"}
    script = Script(turns=(Turn.call("editor", fix), Turn.say("Fixed.")))
    with ScriptedLLMServer(script) as model:
        async with real_editor(tmp_path, model) as editor:
            (editor.workspace / "calc.py").write_text(disk)
            uri = open_doc(editor, "calc.py", unsaved)  # the buffer differs from the file on disk
            sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
            result = await slow_request(
                editor, "sidehand/session/prompt", {"sessionId": sid, "prompt": "fix"}
            )
            assert result["stopReason"] == "end_turn" and result["changes"] == ["M calc.py"]
            listed = await editor.request("sidehand/changes/list", {"sessionId": sid})
            (change,) = listed["files"]
            assert "-    return a - b" in change["diff"] and "+    return a + b" in change["diff"]
            assert "# unsaved note" not in change["diff"].replace(" # unsaved note", "")  # context only
            accepted = await editor.request("sidehand/changes/accept", {"sessionId": sid})
            assert accepted["applied"] and accepted["via"] == "editor"  # no conflict, no force
            (doc_edit,) = editor.edits[-1].document_changes
            assert apply_text_edits(unsaved, doc_edit.edits) == unsaved.replace("a - b", "a + b")
            assert (editor.workspace / "calc.py").read_text() == disk  # the buffer, not the disk
            assert uri == doc_edit.text_document.uri


async def test_code_actions_leave_no_sandbox_behind(tmp_path: Path) -> None:
    fix = {"command": "str_replace", "path": "/workspace/calc.py", "old_str": "a - b", "new_str": "a + b"}
    script = Script(
        turns=(Turn.call("editor", fix), Turn.say("Fixed."), Turn.say("It adds."), Turn.say("Same."))
    )
    with ScriptedLLMServer(script) as model:
        async with real_editor(tmp_path, model) as editor:
            uri = open_doc(editor, "calc.py", "def add(a, b):\n    return a - b\n")
            started = []
            for index in (0, 1):  # Fix (edits, accepted through applyEdit), then Explain (no tool)
                actions = await editor.client.text_document_code_action_async(
                    types.CodeActionParams(
                        text_document=types.TextDocumentIdentifier(uri=uri),
                        range=types.Range(types.Position(0, 0), types.Position(1, 16)),
                        context=types.CodeActionContext(diagnostics=[]),
                    )
                )
                assert actions is not None
                action = actions[index]
                assert isinstance(action, types.CodeAction)
                resolved = await editor.client.code_action_resolve_async(action)
                assert resolved.command is not None
                run = await editor.client.workspace_execute_command_async(
                    types.ExecuteCommandParams(
                        command=resolved.command.command, arguments=resolved.command.arguments
                    )
                )
                sid = to_plain(run)["sessionId"]
                started.append(sid)
                await asyncio.wait_for(_until_closed(editor, sid), TURN_TIMEOUT)
            assert len(editor.edits) == 1  # the Fix was offered; Explain changed nothing
            for sid in started:
                await _until_removed(sid)
            # The panel still shows Explain's conversation: a prompt there opens it again.
            again = await slow_request(
                editor, "sidehand/session/prompt", {"sessionId": started[1], "prompt": "And div?"}
            )
            assert again["stopReason"] == "end_turn"
            await asyncio.wait_for(_close(editor, started[1]), TURN_TIMEOUT)
            server = editor.client._server
            assert server is not None
            # What is left of the server's containers is the one ready sandbox (the pool refilled).
            await eventually(lambda: len(sandboxes_of_process(server.pid)) == 1, timeout=60)


async def _close(editor: Editor, session_id: str) -> None:
    await editor.request("sidehand/session/close", {"sessionId": session_id})
    await _until_removed(session_id)


async def _until_closed(editor: Editor, session_id: str) -> None:
    """Until the session is no longer live (its turn ended and the code action closed it)."""
    await editor.wait_for(lambda: "turn_end" in editor.kinds(session_id), "the turn's end")
    for _ in range(200):
        listed = await editor.request("sidehand/session/list", {})
        mine = [s for s in listed["sessions"] if s["sessionId"] == session_id]
        if mine and not mine[0]["live"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"session {session_id} is still live")


async def _until_removed(session_id: str) -> None:
    """Until the session's sandbox container is gone (closing removes it in the background)."""
    for _ in range(100):
        if not await asyncio.to_thread(sandboxes_of, session_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the sandbox of {session_id} is still there")


async def test_sigterm_interrupts_turns_and_removes_sandboxes(tmp_path: Path) -> None:
    script = Script(turns=(Turn.call("bash", {"command": "sleep 300"}),))
    with ScriptedLLMServer(script) as model:
        async with real_editor(tmp_path, model) as editor:
            sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
            prompt = asyncio.ensure_future(
                slow_request(editor, "sidehand/session/prompt", {"sessionId": sid, "prompt": "wait"})
            )
            await editor.wait_for(
                lambda: any(u["update"].get("status") == "in_progress" for u in editor.updates), "the command"
            )
            server = editor.client._server  # the `sidehand lsp` process pytest-lsp started
            assert server is not None
            assert sandboxes_of(sid)  # its own, or the ready one it took (renamed after it)
            server.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.wait(), 20) == 143
            prompt.cancel()
            with contextlib.suppress(BaseException):
                await prompt
    assert sandboxes_of_process(server.pid) == []  # the session's and the ready ones: all removed
    store = SessionStore(tmp_path / "sessions")
    ended = [e for e in store.events(sid) if e.kind == "turn_ended"]
    assert [getattr(e, "stop_reason", None) for e in ended] == ["interrupted"]
    assert store.read_meta(sid)["status"] == "interrupted"


async def test_typing_reaches_the_sandbox_and_checkpoints_restore(tmp_path: Path) -> None:
    """What the user types (unsaved) is what the agent's next command reads; every tool call is a
    checkpoint, announced to the editor, listed, and restorable (the restore itself undoable)."""
    look = Turn.call("bash", {"command": "cat notes.txt"})
    write = Turn.call("bash", {"command": "echo agent > made.txt"})
    script = Script(turns=(look, write, Turn.say("Done.")))
    with ScriptedLLMServer(script) as model:
        async with real_editor(tmp_path, model) as editor:
            (editor.workspace / "notes.txt").write_text("on disk\n")
            uri = open_doc(editor, "notes.txt", "on disk\n")
            sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
            editor.client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text="typed, unsaved\n")],
                )
            )
            result = await slow_request(
                editor, "sidehand/session/prompt", {"sessionId": sid, "prompt": "look"}
            )
            assert result["changes"] == ["A made.txt"]
            store = SessionStore(tmp_path / "sessions")
            outputs = [e.output for e in store.events(sid) if e.kind == "tool_result"]
            assert outputs[0].startswith("typed, unsaved\n")

            announced = [u["update"] for u in editor.updates if u["update"]["sessionUpdate"] == "checkpoint"]
            listed = (await editor.request("sidehand/checkpoints/list", {"sessionId": sid}))["checkpoints"]
            assert [c["checkpointId"] for c in listed] == ["1", "2"] == [c["checkpointId"] for c in announced]
            assert listed[1]["label"] == "bash: echo agent > made.txt" and listed[1]["toolCallId"]
            restored = await editor.request(
                "sidehand/checkpoints/restore", {"sessionId": sid, "checkpointId": "1"}
            )
            assert restored["paths"] == ["made.txt"] and restored["undo"] == "2"
            assert (await editor.request("sidehand/changes/list", {"sessionId": sid}))["files"] == []
            undone = await editor.request(
                "sidehand/checkpoints/restore", {"sessionId": sid, "checkpointId": restored["undo"]}
            )
            assert undone["paths"] == ["made.txt"]
            listed = (await editor.request("sidehand/changes/list", {"sessionId": sid}))["files"]
            assert [f["path"] for f in listed] == ["made.txt"]
