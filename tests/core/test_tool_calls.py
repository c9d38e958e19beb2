"""Tool calls as other agents' models write them are normalized before validation (issue 18)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.messages import ToolCall
from core.tool_calls import normalize_call, with_fresh_ids
from core.tools import ToolCallError, default_tools, parse_call
from core.tools.bash import BashParams
from core.tools.basic import FinishParams, ThinkParams
from core.tools.editor import EditorParams
from core.tools.plan import PlanParams

TOOLS = default_tools()


def parsed(name: str, arguments: dict[str, Any] | list[Any] | str) -> Any:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    tool, params = parse_call(ToolCall(id="c1", name=name, arguments=text), TOOLS)
    return tool.name, params


@pytest.mark.parametrize(
    ("name", "arguments", "tool", "expected"),
    [
        ("execute_bash", {"command": "ls", "security_risk": "LOW"}, "bash", BashParams(command="ls")),
        (
            "terminal",
            {"command": "ls", "is_input": False, "summary": "list"},
            "bash",
            BashParams(command="ls"),
        ),
        ("terminal", {"command": "y", "is_input": "true"}, "bash", BashParams(command="y", is_input=True)),
        ("bash</function>", {"command": "ls"}, "bash", BashParams(command="ls")),
        ("Bash", {"command": "ls"}, "bash", BashParams(command="ls")),
        (
            "str_replace_editor",
            {"command": "view", "path": "/workspace/a.py", "view_range": "[1, 20]"},
            "editor",
            EditorParams(command="view", path="/workspace/a.py", view_range=[1, 20]),
        ),
        (
            "file_editor",
            {"path": "/workspace/a.py", "old_str": "x", "new_str": "y"},
            "editor",
            EditorParams(command="str_replace", path="/workspace/a.py", old_str="x", new_str="y"),
        ),
        (
            "create",  # the editor's sub-command named as the tool
            {"path": "/workspace/greeting.txt", "file_text": "Hello"},
            "editor",
            EditorParams(command="create", path="/workspace/greeting.txt", file_text="Hello"),
        ),
        ("editor", {"path": "/workspace"}, "editor", EditorParams(command="view", path="/workspace")),
        (
            "editor",
            {"path": "/workspace/a.py", "insert_line": "3", "new_str": "x"},
            "editor",
            EditorParams(command="insert", path="/workspace/a.py", insert_line=3, new_str="x"),
        ),
        (
            "editor",
            {"path": "/workspace/a.py", "file_text": "x"},
            "editor",
            EditorParams(command="create", path="/workspace/a.py", file_text="x"),
        ),
    ],
)
def test_other_agents_calls_are_understood(
    name: str, arguments: dict[str, Any], tool: str, expected: Any
) -> None:
    assert parsed(name, arguments) == (tool, expected)


def test_lenient_json() -> None:
    # a raw newline inside a string (strict JSON refuses it)
    assert parsed("bash", '{"command": "echo a\nb"}')[1] == BashParams(command="echo a\nb")
    # a Python dict
    assert parsed("bash", "{'command': 'ls', 'timeout': 5}")[1] == BashParams(command="ls", timeout=5)
    with pytest.raises(ToolCallError, match="not valid JSON"):
        parsed("bash", '{"command": "ls"')
    with pytest.raises(ToolCallError, match="must be a JSON object"):
        parsed("bash", "[1, 2]")
    # a one-argument tool given that argument's list (a small model's plan call, recorded)
    items = [{"content": "Rename area in geometry.py", "status": "in_progress", "priority": "medium"}]
    assert parsed("plan", items)[1] == PlanParams.model_validate({"items": items})
    with pytest.raises(ToolCallError, match="must be a JSON object"):
        parsed("editor", [1, 2])  # more than one required argument: no guess
    # a one-argument tool given its text instead of an object; broken JSON is never run
    assert parsed("think", "I should look first")[1] == ThinkParams(thought="I should look first")
    assert parsed("finish", "All done.") == ("finish", FinishParams(message="All done."))
    with pytest.raises(ToolCallError, match="not valid JSON"):
        parsed("bash", '{"command": "rm -rf build"')
    with pytest.raises(ToolCallError, match="not valid JSON"):
        parsed("editor", "view /workspace")  # two required arguments: no guess
    with pytest.raises(ToolCallError, match="Unknown tool 'edit'"):
        parsed("edit", {"command": "str_replace"})
    with pytest.raises(ToolCallError, match="missing required argument 'path'"):
        parsed("create", {"file_text": "x"})


def test_normalized_calls_are_what_is_logged() -> None:
    call = ToolCall(id="c1", name="execute_bash", arguments='{"command": "ls", "security_risk": "LOW"}')
    assert normalize_call(call, TOOLS) == ToolCall(id="c1", name="bash", arguments='{"command": "ls"}')
    same = ToolCall(id="c2", name="bash", arguments='{"command": "ls"}')
    assert normalize_call(same, TOOLS) is same
    broken = ToolCall(id="c3", name="terminal", arguments="{not json")
    assert normalize_call(broken, TOOLS) == ToolCall(id="c3", name="bash", arguments="{not json")


def test_duplicate_ids_get_fresh_ones() -> None:
    used = {"call_1"}
    calls = [ToolCall(id="call_1", name="bash"), ToolCall(id="x", name="bash"), ToolCall(id="x", name="bash")]
    fresh = with_fresh_ids(calls, used)
    ids = [c.id for c in fresh]
    assert ids[1] == "x" and len(set(ids)) == 3 and "call_1" not in ids
    assert used == {"call_1", *ids}
    assert with_fresh_ids([ToolCall(id="", name="bash")], set())[0].id.startswith("call_")
