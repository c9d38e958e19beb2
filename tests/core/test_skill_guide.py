"""Skills in a session (core/skill_guide.py), driven through the scripted model server: what each
request the model received holds, and the events in the log (so replay shows the same)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from core.events import ContextLoaded, Event, Notice, SkillInjected
from core.protocols import CommandResult
from core.state import replay
from core.testing.fake_sandbox import InMemorySandbox
from core.testing.scripted_server import ScriptedLLMServer, Turn
from tests.core.conftest import make_agent


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


E = TypeVar("E")


def of_kind(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


async def test_instruction_files_reach_the_system_prompt(tmp_path: Path, server: ScriptedLLMServer) -> None:
    ws = tmp_path / "ws"
    write(ws, "AGENTS.md", "Always run `make lint` before you finish.\n")
    write(ws, ".github/copilot-instructions.md", "Use tabs in Makefiles.\n")
    agent = make_agent(tmp_path, server, [Turn.say("Noted.")])
    session = await agent.manager.create(ws)
    await session.prompt("hello")
    system = agent.system(0)
    assert "## Project instructions" in system
    assert "### AGENTS.md\n\nAlways run `make lint` before you finish." in system
    assert "### .github/copilot-instructions.md\n\nUse tabs in Makefiles." in system
    assert "## Skills" not in system and "skill" not in {
        t["function"]["name"] for t in agent.bodies()[0]["tools"]
    }
    events = session.store.events(session.id)
    [loaded] = of_kind(events, ContextLoaded)
    assert [f.path for f in loaded.instructions] == ["AGENTS.md", ".github/copilot-instructions.md"]
    await agent.manager.aclose()
    assert replay(events).context == loaded  # the system prompt is a function of the log


async def test_a_listed_skill_is_loaded_through_the_tool(tmp_path: Path, server: ScriptedLLMServer) -> None:
    ws = tmp_path / "ws"
    write(
        ws,
        ".agents/skills/deploy/SKILL.md",
        "---\nname: deploy\ndescription: Deploy the app to staging\n---\nRun `make deploy ENV=staging`.\n",
    )
    turns = [
        Turn.call("skill", {"name": "deploy"}),
        Turn.call("skill", {"name": "nope"}),
        Turn.say("Deployed."),
    ]
    agent = make_agent(tmp_path, server, turns)
    session = await agent.manager.create(ws)
    await session.prompt("ship it")
    assert "- deploy: Deploy the app to staging" in agent.system(0)
    assert "skill" in {t["function"]["name"] for t in agent.bodies()[0]["tools"]}
    loaded = agent.bodies()[1]["messages"][-1]
    assert loaded["role"] == "tool" and "Run `make deploy ENV=staging`." in loaded["content"]
    missing = agent.bodies()[2]["messages"][-1]["content"]
    assert missing == "There is no skill named 'nope'. The skills are: deploy."
    await agent.manager.aclose()


async def test_a_trigger_word_injects_its_skill_once_per_session(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    ws = tmp_path / "ws"
    write(
        ws, ".agents/skills/react.md", "---\ntriggers:\n  - react\n  - jsx\n---\nUse function components.\n"
    )
    agent = make_agent(tmp_path, server, [Turn.say("ok"), Turn.say("ok"), Turn.say("ok")])
    session = await agent.manager.create(ws)
    await session.prompt("The reactor test is slow")  # "reactor" is not "react"
    assert '<skill name="react"' not in agent.prompt_text(0)
    await session.prompt("Fix the React form")
    messages = agent.bodies()[1]["messages"]
    assert messages[-2]["content"] == "Fix the React form"
    assert messages[-1]["role"] == "user" and "Use function components." in messages[-1]["content"]
    assert 'trigger="react"' in messages[-1]["content"]
    await session.prompt("More JSX and React, please")
    assert agent.prompt_text(2).count('<skill name="react"') == 1
    [injected] = of_kind(session.store.events(session.id), SkillInjected)
    assert injected.reason == "trigger" and injected.trigger == "react"
    await agent.manager.aclose()
    reloaded = await agent.manager.load(session.id, start_sandbox=False)
    assert reloaded.state.messages == session.state.messages  # replay shows what the model saw
    await agent.manager.aclose()


async def test_a_nested_agents_md_is_given_when_a_file_below_it_is_touched(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    ws = tmp_path / "ws"
    write(ws, "AGENTS.md", "Root rules.\n")
    write(ws, "api/AGENTS.md", "API handlers return JSON errors.\n")
    write(ws, "api/handlers.py", "def get(): ...\n")
    write(ws, "web/app.js", "x\n")
    box = InMemorySandbox({"api/handlers.py": b"def get(): ...\n", "web/app.js": b"x\n"})
    turns = [
        Turn.call("editor", {"command": "view", "path": "/workspace/web/app.js"}),
        Turn.call("editor", {"command": "view", "path": "/workspace/api/handlers.py"}),
        Turn.call("editor", {"command": "view", "path": "/workspace/api/handlers.py"}),
        Turn.say("Done."),
    ]
    agent = make_agent(tmp_path, server, turns, box)
    session = await agent.manager.create(ws)
    await session.prompt("look around")
    assert "API handlers return JSON errors." not in agent.prompt_text(1)
    last = agent.bodies()[2]["messages"][-1]
    assert last["role"] == "user" and "API handlers return JSON errors." in last["content"]
    assert "from api/AGENTS.md (you just worked on api/handlers.py)" in last["content"]
    assert agent.prompt_text(3).count("API handlers return JSON errors.") == 1
    [rule] = of_kind(session.store.events(session.id), SkillInjected)
    assert rule.reason == "rule" and rule.path == "api/AGENTS.md"
    await agent.manager.aclose()


async def test_a_file_read_with_a_shell_command_brings_its_folders_rules(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    ws = tmp_path / "ws"
    write(ws, "api/AGENTS.md", "API handlers return JSON errors.\n")
    write(ws, "api/handlers.py", "def get(): ...\n")
    turns = [
        Turn.call("bash", {"command": "grep -rn 'def ' web/ | head -5"}),  # no rules below web/
        Turn.call("bash", {"command": "cat -n api/handlers.py | head -20"}),
        Turn.say("Done."),
    ]
    agent = make_agent(tmp_path, server, turns)
    session = await agent.manager.create(ws)
    await session.prompt("look around")
    assert "API handlers return JSON errors." not in agent.prompt_text(1)
    last = agent.bodies()[2]["messages"][-1]
    assert "from api/AGENTS.md (you just worked on api/handlers.py)" in last["content"]
    await agent.manager.aclose()


async def test_skills_reload_when_their_files_change(tmp_path: Path, server: ScriptedLLMServer) -> None:
    ws = tmp_path / "ws"
    write(ws, "AGENTS.md", "Version one.\n")

    def user_edits_agents_md(command: str) -> CommandResult:
        write(ws, "AGENTS.md", "Version two, longer.\n")  # the user edits it while the agent works
        os.utime(ws / "AGENTS.md", ns=(10**18, 10**18))
        return CommandResult("", 0)

    agent = make_agent(tmp_path, server, [Turn.call("bash", {"command": "true"}), Turn.say("ok")])
    agent.box.handler = user_edits_agents_md
    session = await agent.manager.create(ws)
    await session.prompt("go")
    assert "Version one." in agent.system(0) and "Version two, longer." in agent.system(1)
    assert len(of_kind(session.store.events(session.id), ContextLoaded)) == 2
    await agent.manager.aclose()


async def test_a_malformed_skill_is_a_notice_and_the_turn_goes_on(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    ws = tmp_path / "ws"
    write(ws, ".agents/skills/broken/SKILL.md", "---\ntriggers: [unclosed\n---\nbody\n")
    write(ws, ".agents/skills/fine/SKILL.md", "---\ndescription: Fine skill\n---\nbody\n")
    agent = make_agent(tmp_path, server, [Turn.say("ok"), Turn.say("ok")])
    session = await agent.manager.create(ws)
    end = await session.prompt("go")
    await session.prompt("again")
    assert end.stop_reason == "end_turn"
    [notice] = of_kind(session.store.events(session.id), Notice)
    assert notice.level == "warning"
    assert ".agents/skills/broken/SKILL.md" in notice.message and "not valid YAML" in notice.message
    assert "- fine: Fine skill" in agent.system(0)
    await agent.manager.aclose()
