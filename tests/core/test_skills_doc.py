"""The examples of docs/skills.md, run: each `<!-- file: PATH -->` block is written into a workspace,
and a session through the scripted model server shows what the page says of it."""

from __future__ import annotations

import re
from pathlib import Path

from core.events import Notice, SkillInjected
from core.testing.fake_sandbox import InMemorySandbox
from core.testing.scripted_server import ScriptedLLMServer, Turn
from tests.core.conftest import make_agent

DOC = Path(__file__).resolve().parents[2] / "docs" / "skills.md"
EXAMPLE = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.DOTALL)


def examples() -> dict[str, str]:
    return {m["path"]: m["body"] + "\n" for m in EXAMPLE.finditer(DOC.read_text())}


async def test_the_examples_do_what_the_page_says(tmp_path: Path, server: ScriptedLLMServer) -> None:
    files = examples()
    assert set(files) == {
        "AGENTS.md",
        ".agents/skills/release/SKILL.md",
        ".agents/skills/containers.md",
        "api/AGENTS.md",
        ".agents/skills/broken/SKILL.md",
    }
    ws = tmp_path / "ws"
    for rel, text in files.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    (ws / "api").mkdir(exist_ok=True)
    box = InMemorySandbox({"api/users.py": b"def get(): ...\n"})
    turns = [
        Turn.call("skill", {"name": "release"}),
        Turn.call("editor", {"command": "view", "path": "/workspace/api/users.py"}),
        Turn.say("Done."),
    ]
    agent = make_agent(tmp_path, server, turns, box)
    session = await agent.manager.create(ws)
    await session.prompt("Release 2.0 and fix the Docker build; the dockerfile-lint job is flaky")

    system = agent.system(0)
    assert "### AGENTS.md\n\n# Working on this project" in system  # always on
    assert "- release: Cut a release of this project (version bump, changelog, tag)" in system
    first = agent.bodies()[0]["messages"]
    assert "Build with `docker build -f deploy/Dockerfile .`" in first[-1]["content"]  # "Docker" fired
    assert "Do not push tags: the user does." in agent.bodies()[1]["messages"][-1]["content"]  # loaded
    assert "Handlers in this folder return JSON errors" in agent.bodies()[2]["messages"][-1]["content"]
    events = session.store.events(session.id)
    assert [(e.name, e.reason) for e in events if isinstance(e, SkillInjected)] == [
        ("containers", "trigger"),
        ("api/AGENTS.md", "rule"),
    ]
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert ".agents/skills/broken/SKILL.md" in notice.message and "not valid YAML" in notice.message
    await agent.manager.aclose()
