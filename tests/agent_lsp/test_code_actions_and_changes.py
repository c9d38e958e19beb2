"""Code actions on a selection, $/progress with cancel, workspace/applyEdit, change accept/reject."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from agent_lsp.protocol import to_plain
from tests.agent_lsp.conftest import Editor, lazy_command_capabilities, open_doc, start_editor, stop

SOURCE = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
FIXED = SOURCE.replace("return a - b", "return a + b", 1)
FIX = {
    "command": "str_replace",
    "path": "/workspace/calc.py",
    "old_str": "add(a, b):\n    return a - b",
    "new_str": "add(a, b):\n    return a + b",
}


def selection() -> types.Range:
    return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=1, character=16))


async def code_actions(editor: Editor, uri: str) -> list[types.CodeAction]:
    diag = types.Diagnostic(range=selection(), message="add subtracts")
    result = await editor.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=selection(),
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    assert result is not None
    return [a for a in result if isinstance(a, types.CodeAction)]


async def test_code_action_fix_runs_a_session_and_applies_the_edit(editor: Editor) -> None:
    uri = open_doc(editor, "calc.py", SOURCE)
    editor.write_script(
        [
            {"tool_calls": [{"name": "editor", "arguments": FIX}]},
            {"tool_calls": [{"name": "finish", "arguments": {"message": "Fixed add."}}]},
        ]
    )
    actions = await code_actions(editor, uri)
    assert [a.title for a in actions] == [
        "Sidehand: Fix",
        "Sidehand: Explain",
        "Sidehand: Write tests",
        "Sidehand: Refactor",
        "Sidehand: Document",
    ]
    assert all(a.command is None for a in actions)  # listing is cheap: resolve attaches the command
    resolved = await editor.client.code_action_resolve_async(actions[0])
    assert resolved.command is not None and resolved.command.command == "sidehand.runCodeAction"
    started = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=resolved.command.command, arguments=resolved.command.arguments)
    )
    sid = to_plain(started)["sessionId"]
    await editor.wait_for(lambda: bool(editor.edits), "workspace/applyEdit")
    edit = editor.edits[0]
    assert edit.change_annotations["sidehand"].needs_confirmation is True
    (doc_edit,) = edit.document_changes
    assert doc_edit.text_document.uri == uri and doc_edit.text_document.version == 1
    text = apply_text_edits(SOURCE, doc_edit.edits)
    assert text == FIXED
    reports = [r for token, rs in editor.client.progress_reports.items() for r in rs]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message == "end turn"
    prompt = [
        u for u in editor.updates if u["sessionId"] == sid and u["update"]["sessionUpdate"] == "user_message"
    ]
    assert "add subtracts" in prompt[0]["update"]["content"]["text"]
    # Once its changes are offered, the code action's session is closed; loaded again, it shows
    # no changes: what the editor took is their new base.
    await editor.wait_for(lambda: "turn_end" in editor.kinds(sid), "the turn's end")
    for _ in range(100):
        live = [s for s in (await editor.request("sidehand/session/list", {}))["sessions"] if s["live"]]
        if not live:
            break
        await asyncio.sleep(0.05)
    assert not live
    await editor.request("sidehand/session/load", {"sessionId": sid})
    listed = await editor.request("sidehand/changes/list", {"sessionId": sid})
    assert listed["files"] == []


async def test_a_code_actions_conversation_goes_on_after_it_closed(editor: Editor) -> None:
    """The panel shows a code action's session; a follow-up prompt there reopens it (the server
    closed it once its turn had changed nothing)."""
    uri = open_doc(editor, "calc.py", SOURCE)
    editor.write_script([{"text": "It subtracts."}])
    explain = next(a for a in await code_actions(editor, uri) if a.title == "Sidehand: Explain")
    resolved = await editor.client.code_action_resolve_async(explain)
    assert resolved.command is not None
    started = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=resolved.command.command, arguments=resolved.command.arguments)
    )
    sid = to_plain(started)["sessionId"]

    async def closed() -> bool:
        listed = (await editor.request("sidehand/session/list", {}))["sessions"]
        return any(s["sessionId"] == sid and not s["live"] for s in listed)

    await editor.wait_for(lambda: "turn_end" in editor.kinds(sid), "the code action's turn to end")
    for _ in range(100):
        if await closed():
            break
        await asyncio.sleep(0.05)
    assert await closed()
    result = await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "How to fix it?"})
    assert (result["stopReason"], result["message"]) == ("end_turn", "It subtracts.")
    asked = [
        u["update"]["content"]["text"]
        for u in editor.updates
        if u["sessionId"] == sid and u["update"]["sessionUpdate"] == "user_message"
    ]
    assert asked[-1] == "How to fix it?"
    # numbered on from the updates sent before it closed: a client drops a number it has seen
    numbers = [u["seq"] for u in editor.updates if u["sessionId"] == sid]
    assert numbers == list(range(len(numbers)))
    # The same, as a user types at once: the prompt may come before the code action closes its
    # session; it is then left open (or opened again), never closed under the new turn.
    started = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=resolved.command.command, arguments=resolved.command.arguments)
    )
    quick = to_plain(started)["sessionId"]
    await editor.wait_for(lambda: "turn_end" in editor.kinds(quick), "the second code action's turn")
    result = await editor.request("sidehand/session/prompt", {"sessionId": quick, "prompt": "And div?"})
    assert result["stopReason"] == "end_turn"
    with pytest.raises(JsonRpcException, match="unknown session"):
        await editor.request("sidehand/session/prompt", {"sessionId": "no-such-session", "prompt": "hi"})


def apply_text_edits(text: str, edits: Any) -> str:
    lines = text.splitlines(keepends=True)
    for e in sorted(edits, key=lambda e: e.range.start.line, reverse=True):
        lines[e.range.start.line : e.range.end.line] = [e.new_text] if e.new_text else []
    return "".join(lines)


async def test_progress_cancel_cancels_the_session(editor: Editor) -> None:
    uri = open_doc(editor, "calc.py", SOURCE)
    editor.write_script([{"tool_calls": [{"name": "bash", "arguments": {"command": "sleep 60"}}]}])
    actions = await code_actions(editor, uri)
    resolved = await editor.client.code_action_resolve_async(actions[1])
    assert resolved.command is not None
    await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=resolved.command.command, arguments=resolved.command.arguments)
    )
    await editor.wait_for(lambda: bool(editor.client.progress_reports), "progress", notification="$/progress")
    await editor.wait_for(lambda: any(u["update"].get("status") == "in_progress" for u in editor.updates))
    (token,) = editor.client.progress_reports
    editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    await editor.wait_for(
        lambda: isinstance(editor.client.progress_reports[token][-1], types.WorkDoneProgressEnd),
        "progress end",
        notification="$/progress",
    )
    end = editor.client.progress_reports[token][-1]
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "cancelled"


LONG = (
    SOURCE
    + "".join(f"\n\ndef f{i}():\n    return {i}\n" for i in range(3))
    + "\n\ndef last():\n    return 0\n"
)
LONG_FIXED = LONG.replace("return a - b", "return a + b", 1)
SECOND = {
    "command": "str_replace",
    "path": "/workspace/calc.py",
    "old_str": "last():\n    return 0",
    "new_str": "last():\n    return 1",
}


async def test_changes_list_accept_and_reject_by_hunk(editor: Editor) -> None:
    (editor.workspace / "calc.py").write_text(LONG)
    editor.write_script(
        [
            {"tool_calls": [{"name": "editor", "arguments": FIX}, {"name": "editor", "arguments": SECOND}]},
            {
                "tool_calls": [
                    {
                        "name": "editor",
                        "arguments": {"command": "create", "path": "/workspace/new.txt", "file_text": "n\n"},
                    }
                ]
            },
            {"text": "Done."},
        ]
    )
    sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
    await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "edit"})
    listed = await editor.request("sidehand/changes/list", {"sessionId": sid})
    files = {f["path"]: f for f in listed["files"]}
    assert set(files) == {"calc.py", "new.txt"} and len(files["calc.py"]["hunks"]) == 2
    assert files["new.txt"]["newText"] == "n\n"
    assert files["calc.py"]["newText"] == LONG_FIXED.replace("last():\n    return 0", "last():\n    return 1")
    accepted = await editor.request(
        "sidehand/changes/accept",
        {"sessionId": sid, "hunks": [{"path": "calc.py", "indexes": [0]}], "write": "disk"},
    )
    assert accepted["written"] == ["calc.py"]
    assert (editor.workspace / "calc.py").read_text() == LONG_FIXED
    listed = await editor.request("sidehand/changes/list", {"sessionId": sid})
    left = {f["path"]: f for f in listed["files"]}
    assert len(left["calc.py"]["hunks"]) == 1  # only the second hunk is left
    rejected = await editor.request(
        "sidehand/changes/reject", {"sessionId": sid, "hunks": [{"path": "calc.py", "indexes": [0]}]}
    )
    assert rejected["reverted"] == ["calc.py"]
    # (rejecting the added new.txt runs `rm` in the sandbox, which the in-memory fake ignores)
    assert [
        f["path"] for f in (await editor.request("sidehand/changes/list", {"sessionId": sid}))["files"]
    ] == ["new.txt"]


async def test_accept_through_apply_edit_creates_files(editor: Editor) -> None:
    editor.write_script(
        [
            {
                "tool_calls": [
                    {
                        "name": "editor",
                        "arguments": {"command": "create", "path": "/workspace/n.txt", "file_text": "n\n"},
                    }
                ]
            },
            {"text": "Done."},
        ]
    )
    sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
    await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "edit"})
    result = await editor.request("sidehand/changes/accept", {"sessionId": sid})
    assert result == {"applied": True, "written": ["n.txt"], "via": "editor", "failureReason": None}
    create, insert = editor.edits[0].document_changes
    assert isinstance(create, types.CreateFile) and create.uri.endswith("/n.txt")
    assert insert.edits[0].new_text == "n\n"
    assert (await editor.request("sidehand/changes/list", {"sessionId": sid}))["files"] == []


async def test_files_an_editor_cannot_take_are_written_and_named(tmp_path: Path) -> None:
    caps = lazy_command_capabilities()
    assert caps.workspace is not None and caps.workspace.workspace_edit is not None
    caps.workspace.workspace_edit.resource_operations = []  # no CreateFile: the new file goes to disk
    caps.workspace.workspace_edit.document_changes = False
    editor, client = await start_editor(
        tmp_path, options={"sidehand": {"protocolVersion": 1}, "approvalMode": "never"}, capabilities=caps
    )
    try:
        create = {"command": "create", "path": "/workspace/made.txt", "file_text": "m\n"}
        editor.write_script([{"tool_calls": [{"name": "editor", "arguments": create}]}, {"text": "Done."}])
        sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
        await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "make"})
        result = await editor.request("sidehand/changes/accept", {"sessionId": sid})
        assert result["written"] == ["made.txt"] and (editor.workspace / "made.txt").read_text() == "m\n"
        await editor.wait_for(
            lambda: any("made.txt" in m.message for m in client.messages),
            "a message naming the file",
            notification="window/showMessage",
        )
    finally:
        await client.shutdown_session()
        await stop(client)
