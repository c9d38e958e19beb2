"""sidehand/session/*: new, prompt with its update stream, cancel, list, load (replay), fork."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.agent_lsp.conftest import Editor, open_doc

CREATE = {"command": "create", "path": "/workspace/hello.py", "file_text": "print('hi')\n"}


async def test_prompt_streams_updates_and_ends_the_turn(editor: Editor) -> None:
    editor.write_script(
        [
            {"text": "Creating hello.py.", "tool_calls": [{"name": "editor", "arguments": CREATE}]},
            {"tool_calls": [{"name": "bash", "arguments": {"command": "python3 hello.py"}}]},
            {"tool_calls": [{"name": "finish", "arguments": {"message": "Done."}}]},
        ]
    )
    new = await editor.request("sidehand/session/new", {})
    sid = new["sessionId"]
    assert new["cwd"] == str(editor.workspace)
    result = await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "make hello.py"})
    assert result["stopReason"] == "end_turn"
    assert result["message"] == "Done."
    assert result["changes"] == ["A hello.py"]
    await editor.wait_for(lambda: "turn_end" in editor.kinds(sid), "turn_end")
    updates = [u for u in editor.updates if u["sessionId"] == sid]
    assert [u["seq"] for u in updates] == list(range(len(updates)))
    kinds = editor.kinds(sid)
    assert {
        "user_message",
        "plan",
        "agent_message_chunk",
        "agent_message",
        "tool_call",
        "usage",
        "state",
    } <= set(kinds)
    calls = [u["update"] for u in updates if u["update"]["sessionUpdate"] == "tool_call"]
    edit = next(c for c in calls if c.get("kind") == "edit")
    statuses = [c["status"] for c in calls if c["toolCallId"] == edit["toolCallId"]]
    assert statuses == ["pending", "in_progress", "completed"]
    done = [c for c in calls if c["toolCallId"] == edit["toolCallId"]][-1]
    diff = done["content"][0]
    assert diff["type"] == "diff" and diff["path"] == str(editor.workspace / "hello.py")
    assert diff["newText"] == "print('hi')\n" and "+print('hi')" in diff["unifiedDiff"]
    assert edit["locations"] == [{"path": str(editor.workspace / "hello.py")}]
    run = next(c for c in calls if c.get("kind") == "execute")
    output = [c for c in calls if c["toolCallId"] == run["toolCallId"]][-1]["content"][0]
    assert output["type"] == "output" and output["exitCode"] == 0
    usage = [u["update"] for u in updates if u["update"]["sessionUpdate"] == "usage"][-1]
    assert usage["turn"]["promptTokens"] == 30 and usage["session"]["promptTokens"] == 30


async def test_cancel_stops_a_running_turn(editor: Editor) -> None:
    editor.write_script([{"tool_calls": [{"name": "bash", "arguments": {"command": "sleep 60"}}]}])
    sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
    prompt = asyncio.ensure_future(
        editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "wait"})
    )
    await editor.wait_for(
        lambda: any(u["update"].get("status") == "in_progress" for u in editor.updates), "the command to run"
    )
    await editor.request("sidehand/session/cancel", {"sessionId": sid})
    result = await prompt
    assert result["stopReason"] == "cancelled"
    states = [u["update"]["state"] for u in editor.updates if u["update"]["sessionUpdate"] == "state"]
    assert states[-1] == "cancelled"


async def test_list_load_replays_and_fork(editor: Editor) -> None:
    editor.write_script([{"text": "Hello there."}])
    sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
    await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "hi"})
    listed = await editor.request("sidehand/session/list", {})
    assert [s["sessionId"] for s in listed["sessions"]] == [sid]
    assert listed["sessions"][0]["title"] == "hi" and listed["sessions"][0]["live"] is True
    before = len(editor.updates)
    loaded = await editor.request("sidehand/session/load", {"sessionId": sid})
    replay = editor.updates[before:]
    assert loaded["replayed"] >= 4 and len(replay) >= loaded["replayed"]
    kinds = [u["update"]["sessionUpdate"] for u in replay]
    assert kinds[0] == "user_message" and "agent_message" in kinds and "turn_end" in kinds
    texts = [
        u["update"]["content"]["text"] for u in replay if u["update"]["sessionUpdate"] == "agent_message"
    ]
    assert texts == ["Hello there."]
    fork = await editor.request("sidehand/session/fork", {"sessionId": sid})
    assert fork["parent"] == sid and fork["sessionId"] != sid
    listed = await editor.request("sidehand/session/list", {})
    assert {s["sessionId"] for s in listed["sessions"]} == {sid, fork["sessionId"]}


async def test_unsaved_buffers_and_selection_context_reach_the_agent(editor: Editor) -> None:
    uri = open_doc(editor, "app.py", "x = 1\n")
    from lsprotocol import types

    editor.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = 2  # unsaved\n")],
        )
    )
    editor.write_script(
        [{"tool_calls": [{"name": "editor", "arguments": {"command": "view", "path": "/workspace/app.py"}}]}]
    )
    sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
    ctx: dict[str, Any] = {
        "type": "selection",
        "uri": uri,
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}},
    }
    await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "look", "context": [ctx]})
    results = [
        u["update"]
        for u in editor.updates
        if u["update"].get("status") == "completed" and u["update"].get("content")
    ]
    assert "x = 2  # unsaved" in results[0]["content"][0]["text"]
    changes = await editor.request("sidehand/changes/list", {"sessionId": sid})
    assert changes["files"] == []  # the unsaved text is the sandbox's baseline, not an agent change
