"""The `plan` tool: the agent's task list, an event the fronts show and the state keeps."""

from __future__ import annotations

from pathlib import Path

from core.events import PlanEntry, PlanUpdated
from core.testing.scripted_server import ScriptedLLMServer, Turn
from tests.core.conftest import make_agent

PLAN = [
    {"content": "Read the failing test", "status": "completed", "priority": "high"},
    {"content": "Fix the parser", "status": "in_progress"},
    {"content": "Run the suite", "status": "pending", "priority": "low"},
]


async def test_a_plan_is_an_event_and_the_model_sees_it(tmp_path: Path, server: ScriptedLLMServer) -> None:
    turns = [
        Turn.call("plan", {"items": PLAN}),
        Turn.call("plan", {"items": [{"content": "x", "status": "done"}]}),  # not a status
        Turn.call("plan", {"items": [{"content": "   ", "status": "pending"}]}),
        Turn.say("Planned."),
    ]
    agent = make_agent(tmp_path, server, turns)
    session = await agent.manager.create(tmp_path)
    await session.prompt("fix the parser")
    assert "`plan` tool" in agent.system(0)
    assert "plan" in {t["function"]["name"] for t in agent.bodies()[0]["tools"]}
    seen = agent.bodies()[1]["messages"][-1]["content"]
    assert seen == (
        "Plan (1/3 done):\n[x] Read the failing test (high)\n[>] Fix the parser\n[ ] Run the suite (low)"
    )
    assert "Invalid arguments for tool 'plan'" in agent.bodies()[2]["messages"][-1]["content"]
    assert "needs a `content`" in agent.bodies()[3]["messages"][-1]["content"]
    [update] = [e for e in session.store.events(session.id) if isinstance(e, PlanUpdated)]
    assert update.entries == (
        PlanEntry(content="Read the failing test", status="completed", priority="high"),
        PlanEntry(content="Fix the parser", status="in_progress", priority="medium"),
        PlanEntry(content="Run the suite", status="pending", priority="low"),
    )
    assert session.state.plan == update.entries
    await agent.manager.aclose()
    reloaded = await agent.manager.load(session.id, start_sandbox=False)
    assert reloaded.state.plan == update.entries
    await agent.manager.aclose()
