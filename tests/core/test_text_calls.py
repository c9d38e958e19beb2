"""Tool calls written as text: every recorded reply of the real small model (tests/fixtures/
model_replies, Qwen2.5-Coder-1.5B with its stock template) and the forms other models write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.messages import ToolCall
from core.text_calls import TextCall, read_text_calls
from core.tools import default_tools, parse_call

TOOLS = default_tools()
REPLIES = Path(__file__).parents[1] / "fixtures" / "model_replies"

# What each recorded reply amounts to: the calls (tool, then the editor's command or bash's
# command), "problem" (looks like a call, cannot be run: the model is told), or "answer" (prose).
EXPECTED: dict[str, list[tuple[str, str]] | str] = {
    "jinja-t0-create-after-missing-folder": [("finish", "")],
    "jinja-t0-create-after-unknown-tool": [("finish", "")],
    "jinja-t0-create-start": [("editor", "create")],
    "jinja-t0-explore-start": "answer",
    "jinja-t0-fix-after-edit": [("editor", "view")],
    "jinja-t0-fix-after-pytest-missing": "answer",
    "jinja-t0-fix-after-test-failure": "answer",
    "jinja-t0-fix-after-tests-pass": [("finish", "")],
    "jinja-t0-fix-after-view": [("editor", "view")],
    "jinja-t0-fix-start": [("bash", "python3 test_calc.py")],
    "jinja-t0-rename-after-listing": [("editor", "view")],
    "jinja-t0-rename-start": [("editor", "str_replace")],
    "jinja-t0-run-tests-start": [("bash", "python3 test_calc.py")],
    "jinja-tdefault-create-after-missing-folder": [("finish", "")],
    "jinja-tdefault-create-after-unknown-tool": [("think", "")],
    "jinja-tdefault-create-start": [("editor", "create")],
    "jinja-tdefault-explore-start": "answer",
    "jinja-tdefault-fix-after-edit": [("finish", "")],
    "jinja-tdefault-fix-after-pytest-missing": "problem",  # it echoed a <tool_response>
    "jinja-tdefault-fix-after-test-failure": [("bash", "cd /workspace && python3 test_calc.py")],
    "jinja-tdefault-fix-after-tests-pass": [("finish", "")],
    "jinja-tdefault-fix-after-view": "answer",
    "jinja-tdefault-fix-start": [("bash", "python3 test_calc.py")],
    "jinja-tdefault-rename-after-listing": [
        ("editor", "view"),
        ("editor", "view"),
        ("editor", "str_replace"),
    ],
    "jinja-tdefault-rename-start": [("think", "")],
    "jinja-tdefault-run-tests-start": [("bash", "python3 test_calc.py")],
    "text-t0-create-after-missing-folder": [("editor", "create")],
    "text-t0-create-after-unknown-tool": [("think", "")],
    "text-t0-create-start": [("editor", "create")],
    "text-t0-explore-start": "answer",
    "text-t0-fix-after-edit": "empty",
    "text-t0-fix-after-pytest-missing": [("editor", "str_replace"), ("bash", "pytest test_calc.py")],
    "text-t0-fix-after-test-failure": [
        ("editor", "str_replace"),
        ("bash", "cd /workspace && python3 test_calc.py"),
    ],
    "text-t0-fix-after-tests-pass": [("finish", "")],
    "text-t0-fix-after-view": [("editor", "str_replace")],
    "text-t0-fix-start": [("bash", "python3 test_calc.py")],
    "text-t0-rename-after-listing": [("editor", "view")],
    "text-t0-rename-start": [("editor", "str_replace")],
    "text-t0-run-tests-start": "problem",  # {"message": ...}: finish's argument, no tool named
    "text-tdefault-create-after-missing-folder": [("editor", "create"), ("editor", "create")],
    "text-tdefault-create-after-unknown-tool": "answer",
    "text-tdefault-create-start": "problem",
    "text-tdefault-explore-start": "answer",
    "text-tdefault-fix-after-edit": "empty",
    "text-tdefault-fix-after-pytest-missing": "answer",
    "text-tdefault-fix-after-test-failure": [
        ("editor", "str_replace"),
        ("bash", "cd /workspace && python3 test_calc.py"),
    ],
    "text-tdefault-fix-after-tests-pass": "problem",
    "text-tdefault-fix-after-view": [("editor", "str_replace")],
    "text-tdefault-fix-start": [("editor", "view")],
    "text-tdefault-rename-after-listing": [("editor", "view")],
    "text-tdefault-rename-start": [("editor", "str_replace")],
    "text-tdefault-run-tests-start": "problem",
}


def summary(call: TextCall) -> tuple[str, str]:
    text = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    try:
        tool, params = parse_call(ToolCall(id="c", name=call.name, arguments=text), TOOLS)
    except Exception:  # valid as a call, invalid as arguments (the model is told when it runs)
        args = json.loads(text)
        return ("editor", args.get("command", "")) if call.name in ("editor", "create") else (call.name, "")
    return tool.name, str(getattr(params, "command", ""))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_recorded_reply_is_read(name: str) -> None:
    message = json.loads((REPLIES / f"{name}.json").read_text())["message"]
    found = read_text_calls(message.get("content") or "", TOOLS)
    expected = EXPECTED[name]
    if isinstance(expected, list):
        assert [summary(c) for c in found.calls] == expected
        assert found.problem is None
    elif expected == "problem":
        assert found.calls == [] and found.problem is not None
    elif expected == "empty":
        assert found.calls == [] and found.problem is None and found.prose == ""
    else:
        assert found.calls == [] and found.problem is None and found.prose


def test_all_recordings_are_covered() -> None:
    assert {p.stem for p in REPLIES.glob("*.json")} == set(EXPECTED)


def test_the_prose_around_calls_is_kept() -> None:
    message = json.loads((REPLIES / "jinja-tdefault-fix-after-edit.json").read_text())["message"]
    found = read_text_calls(message["content"], TOOLS)
    assert found.prose.startswith("To review the changes") and "```" not in found.prose
    assert '"name"' not in found.prose


def calls(text: str) -> list[tuple[str, Any]]:
    return [(c.name, c.arguments) for c in read_text_calls(text, TOOLS).calls]


def test_tagged_forms() -> None:
    hermes = 'I will look.\n<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call>'
    assert calls(hermes) == [("bash", {"command": "ls"})]
    assert read_text_calls(hermes, TOOLS).prose == "I will look."
    unclosed = '<tool_call>\n{"name": "bash", "arguments": {"command": "pwd"}}'  # stopped at the tag
    assert calls(unclosed) == [("bash", {"command": "pwd"})]
    qwen3 = (
        "<tool_call>\n<function=str_replace_editor>\n<parameter=command>\ncreate\n</parameter>\n"
        "<parameter=path>\n/workspace/a.py\n</parameter>\n<parameter=file_text>\nx = 1\n\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    assert calls(qwen3) == [
        ("str_replace_editor", {"command": "create", "path": "/workspace/a.py", "file_text": "x = 1\n"})
    ]
    assert read_text_calls(qwen3, TOOLS).prose == ""
    openhands = "<function=execute_bash>\n<parameter=command>ls -la</parameter>\n</function>"
    assert calls(openhands) == [("execute_bash", {"command": "ls -la"})]
    json_body = '<function=bash>{"command": "pwd"}</function>'
    assert calls(json_body) == [("bash", {"command": "pwd"})]
    unclosed_parameter = "<function=bash>\n<parameter=command>ls\n<parameter=timeout>5"
    assert calls(unclosed_parameter) == [("bash", {"command": "ls", "timeout": "5"})]
    invoke = (
        '<function_calls>\n<invoke name="bash">\n<parameter name="command">git status</parameter>\n'
        "</invoke>\n</function_calls>"
    )
    assert calls(invoke) == [("bash", {"command": "git status"})]
    mistral = '[TOOL_CALLS][{"name": "bash", "arguments": {"command": "ls"}}, {"name": "think", "arguments": {"thought": "t"}}]'
    assert calls(mistral) == [("bash", {"command": "ls"}), ("think", {"thought": "t"})]
    llama = '<|python_tag|>{"name": "bash", "parameters": {"command": "ls"}}'
    assert calls(llama) == [("bash", {"command": "ls"})]
    openai = '{"type": "function", "function": {"name": "bash", "arguments": "{\\"command\\": \\"ls\\"}"}}'
    assert calls(openai) == [("bash", {"command": "ls"})]


def test_several_calls_in_order_and_text_around() -> None:
    text = (
        'First the tests:\n```json\n{"name": "bash", "arguments": {"command": "pytest"}}\n```\n'
        'Then: {"name": "editor", "arguments": {"command": "view", "path": "/workspace"}} and done.'
    )
    found = read_text_calls(text, TOOLS)
    assert [(c.name, c.arguments) for c in found.calls] == [
        ("bash", {"command": "pytest"}),
        ("editor", {"command": "view", "path": "/workspace"}),
    ]
    assert found.prose == "First the tests:\n\nThen:  and done."


def test_what_is_not_a_call() -> None:
    for text in (
        "Run it yourself:\n```bash\npython3 test.py\n```",
        'Here is the config:\n```python\nsettings = {"name": "bash", "arguments": {"command": "rm -rf /"}}\n```',
        'The package.json holds {"name": "my-app", "version": "1.0.0"}.',
        "Done: the braces {} and [1, 2] are just text.",
    ):
        found = read_text_calls(text, TOOLS)
        assert found.calls == [] and found.problem is None, text


def test_what_looks_like_a_call_but_cannot_be_read_is_a_problem() -> None:
    broken = '<tool_call>\n{"name": "bash", "arguments": {"command": "echo "hi""}}\n</tool_call>'
    assert "cannot be read" in (read_text_calls(broken, TOOLS).problem or "")
    fenced = '```json\n{"name": "bash", "arguments": {"command": "echo "hi""}}\n```'
    assert "cannot be read" in (read_text_calls(fenced, TOOLS).problem or "")
    bare = '{"name": "bash", "arguments": "git commit -m "Renamed area""}'  # the real model's
    assert "cannot be read" in (read_text_calls(bare, TOOLS).problem or "")
    echo = "<tool_response>\nok\n</tool_response>"
    assert "tool_response" in (read_text_calls(echo, TOOLS).problem or "")


def test_a_lone_object_naming_no_tool_is_inferred_only_when_unambiguous() -> None:
    assert calls('{"command": "ls -la"}') == [("bash", {"command": "ls -la"})]
    assert calls('```json\n{"command": "view", "path": "/workspace"}\n```') == [
        ("editor", {"command": "view", "path": "/workspace"})
    ]
    assert calls('{"thought": "plan"}') == [("think", {"thought": "plan"})]
    finish_like = read_text_calls('{"message": "Running tests..."}', TOOLS)
    assert finish_like.calls == [] and "names no tool" in (finish_like.problem or "")


def test_unreadable_arguments_are_passed_on_as_written() -> None:
    found = read_text_calls('{"name": "bash", "arguments": "{not json"}', TOOLS)
    assert [(c.name, c.arguments) for c in found.calls] == [("bash", "{not json")]


def test_hostile_input_is_bounded() -> None:
    assert read_text_calls("{" * 50_000, TOOLS).calls == []
    assert read_text_calls("[" * 5_000 + "]" * 5_000, TOOLS).calls == []
    huge = '{"name": "bash", "arguments": {"command": "' + "x" * 300_000 + '"}}'
    assert read_text_calls(huge, TOOLS).calls == []  # beyond what is read
    assert read_text_calls("\x00<tool_call>\x00", TOOLS).calls == []
