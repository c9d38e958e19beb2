"""The agent's plan as ACP `plan` updates, and notices (a skill file that cannot be used) as
`window/showMessage`, through the language server's own entry point on the fakes."""

from __future__ import annotations

from lsprotocol import types

from tests.agent_lsp.conftest import Editor

PLAN = [
    {"content": "Reproduce the bug", "status": "completed", "priority": "high"},
    {"content": "Fix it", "status": "in_progress", "priority": "medium"},
]


async def test_plan_updates_and_notices(editor: Editor) -> None:
    skills = editor.workspace / ".agents" / "skills" / "broken"
    skills.mkdir(parents=True)
    (skills / "SKILL.md").write_text("---\ntriggers: [unclosed\n---\nbody\n")
    editor.write_script(
        [
            {"tool_calls": [{"name": "plan", "arguments": {"items": PLAN}}]},
            {"tool_calls": [{"name": "finish", "arguments": {"message": "Fixed."}}]},
        ]
    )
    sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
    result = await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "fix the bug"})
    assert result["stopReason"] == "end_turn"
    plans = [
        u["update"]
        for u in editor.updates
        if u["sessionId"] == sid and u["update"]["sessionUpdate"] == "plan"
    ]
    assert plans == [{"sessionUpdate": "plan", "entries": []}, {"sessionUpdate": "plan", "entries": PLAN}]
    client = editor.client
    await editor.wait_for(
        lambda: any("broken/SKILL.md" in m.message for m in client.messages),
        "the notice",
        notification="window/showMessage",
    )
    [shown] = [m for m in client.messages if "broken/SKILL.md" in m.message]
    assert shown.type == types.MessageType.Warning and "not valid YAML" in shown.message

    # A new turn starts with the plan so far; a replay (load) shows the plan but repeats no notice.
    editor.write_script([{"text": "Nothing else."}])
    await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "anything else?"})
    plans = [
        u["update"]
        for u in editor.updates
        if u["sessionId"] == sid and u["update"]["sessionUpdate"] == "plan"
    ]
    assert plans[-1] == {"sessionUpdate": "plan", "entries": PLAN}
    await editor.request("sidehand/session/close", {"sessionId": sid})
    count = len(client.messages)
    loaded = await editor.request("sidehand/session/load", {"sessionId": sid})
    assert loaded["replayed"] > 0
    replayed = [u["update"] for u in editor.updates if u["update"]["sessionUpdate"] == "plan"]
    assert replayed[-1]["entries"] == PLAN
    assert len(client.messages) == count
