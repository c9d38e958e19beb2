"""`sidehand run` as a user runs it, on the Docker sandbox with the scripted model server through
litellm: the repository's instructions and skills reach the model, the user's MCP server's tools
work, the plan and the task's tokens and cost are printed, and each limit ends the run with its
exit code."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from core.events import Condensation, Nudge, PlanUpdated, SkillInjected, ToolResultEvent
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from tests.e2e.conftest import cli_env, only_session, sidehand

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


def chat_bodies(server: ScriptedLLMServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.body is not None and "messages" in r.body]


def test_run_follows_the_repository_and_uses_an_mcp_server(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    (workspace / "AGENTS.md").write_text("Always add a type hint to every function.\n")
    (workspace / "api").mkdir()
    (workspace / "api" / "AGENTS.md").write_text("Handlers return JSON.\n")
    (workspace / "api" / "views.py").write_text("def index():\n    return 'hi'\n")
    user_skills = tmp_path / "user-skills" / "testing"
    user_skills.mkdir(parents=True)
    (user_skills / "SKILL.md").write_text(
        "---\nname: testing\ndescription: How to test\ntriggers:\n  - pytest\n---\nUse pytest -q.\n"
    )
    mcp_config = tmp_path / "mcp.json"
    entry = {
        "command": sys.executable,
        "args": ["-m", "tests.support.mcp_tool_server"],
        "env": {"PYTHONPATH": str(ROOT)},
    }
    mcp_config.write_text(json.dumps({"mcpServers": {"calc": entry}}))
    plan = [{"content": "Add the handler", "status": "in_progress", "priority": "high"}]
    server.set_script(
        Script(
            turns=(
                Turn.call("plan", {"items": plan}),
                Turn.call("editor", {"command": "view", "path": "/workspace/api/views.py"}),
                Turn.call("mcp__calc__add", {"a": 20, "b": 22}),
                Turn.call("finish", {"message": "The answer is 42."}),
            )
        )
    )
    env = cli_env(
        server,
        tmp_path,
        SIDEHAND_USER_SKILLS_DIR=str(tmp_path / "user-skills"),
        SIDEHAND_MCP_CONFIG=str(mcp_config),
    )
    done = sidehand(["run", "Add a handler; run pytest", "--workspace", str(workspace)], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The answer is 42."
    bodies = chat_bodies(server)
    system = json.dumps(bodies[0]["messages"])
    assert "Always add a type hint to every function." in system
    assert "Use pytest -q." in system  # "pytest" in the task triggered the user's skill
    assert "Handlers return JSON." in json.dumps(bodies[2]["messages"])  # after views.py was opened
    assert bodies[3]["messages"][-1]["content"] == "42"
    assert "≡ plan (0/1 done)" in done.stderr and "▶ Add the handler" in done.stderr
    assert "◆ api/AGENTS.md given to the agent" in done.stderr
    last = done.stderr.splitlines()[-1]
    assert re.fullmatch(r"tokens: \d+ prompt \+ \d+ completion = \d+; cost: \$0\.0000", last), last
    store, session_id = only_session(tmp_path)
    events = store.events(session_id)
    assert [e.entries[0].content for e in events if isinstance(e, PlanUpdated)] == ["Add the handler"]
    assert {e.reason for e in events if isinstance(e, SkillInjected)} == {"trigger", "rule"}


def test_run_limits_and_their_exit_codes(server: ScriptedLLMServer, tmp_path: Path, workspace: Path) -> None:
    env = cli_env(server, tmp_path, SIDEHAND_MCP_CONFIG=str(tmp_path / "none.json"))
    server.set_script(Script(turns=(Turn.call("bash", {"command": "sleep 600"}),)))
    done = sidehand(["run", "wait", "--workspace", str(workspace), "--timeout", "3"], env)
    assert done.returncode == 124, done.stderr
    assert "timeout: the task ran out of time (3 s)" in done.stderr
    store, session_id = only_session(tmp_path)
    [result] = [e for e in store.events(session_id) if isinstance(e, ToolResultEvent)]
    assert result.error  # the command was stopped, not waited for

    server.set_script(Script(turns=tuple(Turn.call("think", {"thought": str(i)}) for i in range(20))))
    done = sidehand(["run", "think", "--workspace", str(workspace), "--max-tokens", "3000"], env)
    assert done.returncode == 6, done.stderr
    assert "max_tokens: the task used" in done.stderr

    server.set_script(
        Script(turns=tuple(Turn.call("bash", {"command": "cat missing.txt"}) for _ in range(30)))
    )
    done = sidehand(["run", "read it", "--workspace", str(workspace), "--max-cost", "5"], env)
    assert done.returncode == 5, done.stderr
    assert "stuck: the agent is stuck: bash" in done.stderr and "! nudged the agent" in done.stderr
    newest = max(store.list_meta(), key=lambda m: m["created"])["id"]
    assert len([e for e in store.events(newest) if isinstance(e, Nudge)]) == 1


def test_run_stops_at_its_cost_and_condenses_a_long_session(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    # A model litellm has prices for, served by the scripted server: the cost is litellm's.
    env = cli_env(
        server,
        tmp_path,
        SIDEHAND_MODEL="openai/gpt-4o",
        SIDEHAND_PROMPT_TOKEN_BUDGET="2500",
        SIDEHAND_CONDENSER_MODEL="openai/summarizer",
    )
    server.set_script(Script(turns=(Turn.say("Wrote some files."),), repeat=True), model="summarizer")
    steps = [
        Turn.call("bash", {"command": f"echo {i} > f{i}.txt && seq 1 120 | sed 's/^/line /'"})
        for i in range(12)
    ]
    server.set_script(Script(turns=(*steps, Turn.call("finish", {"message": "done"}))), model="gpt-4o")
    done = sidehand(["run", "write twelve files", "--workspace", str(workspace)], env)
    assert done.returncode == 0, done.stderr
    assert "◇ history condensed" in done.stderr
    store, session_id = only_session(tmp_path)
    events = store.events(session_id)
    assert {e.strategy for e in events if isinstance(e, Condensation)} == {"summary"}
    last = json.dumps(chat_bodies(server)[-1]["messages"])
    missing = [i for i in range(12) if f"f{i}.txt" not in last]
    assert not missing and "write twelve files" in last and "Wrote some files." in last, missing

    server.set_script(Script(turns=tuple(steps)), model="gpt-4o")
    done = sidehand(["run", "again", "--workspace", str(workspace), "--max-cost", "0.004"], env)
    assert done.returncode == 4, done.stderr
    assert "budget: the task's budget of $0.004 is spent" in done.stderr
    cost = float(done.stderr.splitlines()[-1].rsplit("$", 1)[1])
    assert 0.004 <= cost < 0.004 + 0.005  # one call of overshoot at most
