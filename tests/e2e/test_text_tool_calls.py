"""`sidehand run` with models that write their tool calls as text (issue 18): the scripted server
plays replies the real small model gave (tests/fixtures/model_replies), reached through litellm,
and the commands run in the real Docker sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.events import ReplyNotice, ToolCallEvent, TurnEnded
from core.testing.scripted_server import Script, ScriptedError, ScriptedLLMServer, Turn
from tests.e2e.conftest import cli_env, only_session, results, sidehand

pytestmark = pytest.mark.docker

REPLIES = Path(__file__).parents[1] / "fixtures" / "model_replies"
CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TEST_CALC = 'from calc import add, mul\n\nassert add(2, 3) == 5, add(2, 3)\nprint("all tests passed")\n'


def recorded(name: str) -> Turn:
    return Turn.say(json.loads((REPLIES / f"{name}.json").read_text())["message"]["content"])


def test_a_model_writing_json_blocks_creates_the_file(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    """The create task as the model answered it with its stock template: ```json with the editor's
    sub-command as the tool's name (which ended the turn with no change before)."""
    server.set_script(
        Script(turns=(recorded("jinja-t0-create-start"), recorded("jinja-t0-fix-after-tests-pass")))
    )
    done = sidehand(
        ["run", "Create greeting.txt", "--workspace", str(workspace), "--apply"], cli_env(server, tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert (workspace / "greeting.txt").read_text() == "Hello from Sidehand"
    first, second = (r.body or {} for r in server.requests if r.method == "POST")
    assert "tools" in first and "tools" not in second  # auto turned to text mode after the first reply
    assert "<tool_call>" in second["messages"][0]["content"]  # the protocol is in the system prompt
    assert "The network is off" in first["messages"][0]["content"]
    store, session_id = only_session(tmp_path)
    calls = [e for e in store.events(session_id) if isinstance(e, ToolCallEvent)]
    assert [(c.tool, json.loads(c.arguments)["command"]) for c in calls[:1]] == [("editor", "create")]


def test_a_server_without_tool_calling_gets_the_text_protocol(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    """As llama-server --no-jinja: every request with tools is refused (HTTP 500); Sidehand asks
    again without them and the model's text calls fix the bug."""
    (workspace / "calc.py").write_text(CALC)
    (workspace / "test_calc.py").write_text(TEST_CALC)
    refusal = ScriptedError(status=500, body={"error": {"message": "tools param requires --jinja flag"}})
    server.set_script(
        Script(
            refuse_tools=refusal,
            turns=(
                recorded("text-t0-fix-after-view"),  # {"name": "editor", ... "str_replace" ...}
                Turn.say(
                    '<tool_call>\n{"name": "bash", "arguments": {"command": "python3 test_calc.py"}}\n</tool_call>'
                ),
                recorded("text-t0-fix-after-tests-pass"),
            ),
        )
    )
    done = sidehand(
        ["run", "Fix calc.py", "--workspace", str(workspace), "--apply"], cli_env(server, tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "return a + b" in (workspace / "calc.py").read_text()
    bodies = [r.body or {} for r in server.requests if r.method == "POST"]
    assert "tools" in bodies[0] and all("tools" not in b for b in bodies[1:])
    store, session_id = only_session(tmp_path)
    outputs = [r.output for r in results(store.events(session_id))]
    assert "all tests passed" in outputs[1] and "[exit code: 0]" in outputs[1]


def test_unreadable_and_empty_replies(server: ScriptedLLMServer, tmp_path: Path, workspace: Path) -> None:
    server.set_script(
        Script(
            turns=(
                recorded("text-t0-run-tests-start"),
                recorded("text-t0-fix-after-edit"),
                recorded("text-tdefault-fix-after-edit"),
            )
        )
    )
    done = sidehand(["run", "Run the tests", "--workspace", str(workspace)], cli_env(server, tmp_path))
    assert done.returncode == 7, done.stderr
    assert "the model replied with nothing, twice in a row" in done.stdout
    store, session_id = only_session(tmp_path)
    events = store.events(session_id)
    notices = [e.text for e in events if isinstance(e, ReplyNotice)]
    assert len(notices) == 2 and "names no tool" in notices[0] and "was empty" in notices[1]
    assert [e.stop_reason for e in events if isinstance(e, TurnEnded)] == ["empty_reply"]


def test_a_quiet_command_is_waited_for_across_calls(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(
        Script(
            turns=(
                Turn.call(
                    "execute_bash",
                    {"command": "echo started; sleep 2; echo finished", "security_risk": "LOW"},
                ),
                Turn.call("bash", {"command": "ls"}),
                Turn.call("bash", {"command": "", "timeout": 20}),
                Turn.call("finish", {"message": "waited"}),
            )
        )
    )
    env = cli_env(server, tmp_path, SIDEHAND_COMMAND_QUIET_TIMEOUT="0.5")
    done = sidehand(["run", "wait for it", "--workspace", str(workspace)], env)
    assert done.returncode == 0, done.stderr
    store, session_id = only_session(tmp_path)
    first, refused, waited, _ = (r.output for r in results(store.events(session_id)))
    assert first.startswith("started") and "still running" in first
    assert "Not run: the previous command (`echo started; sleep 2; echo finished`)" in refused
    assert waited.startswith("finished") or "\nfinished" in waited
    assert "[exit code: 0]" in waited
