"""Condensation in a session, through the scripted model server: the default condenser keeps the
prompt within its budget by the tokens the provider counted, summarizes with the separate
condenser model, logs the condensation, and every later prompt still names every file edited and
the user's latest requirement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.events import Condensation, Event, ToolCallEvent, UsageRecorded
from core.protocols import CommandResult
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from tests.core.conftest import make_agent

BUDGET = 4000


def steps(start: int, count: int) -> list[Turn]:
    turns = []
    for i in range(start, start + count):
        path = f"/workspace/pkg/mod{i}.py"
        turns.append(Turn.call("editor", {"command": "create", "path": path, "file_text": f"VALUE = {i}\n"}))
        turns.append(Turn.call("bash", {"command": f"python3 -m pytest tests/test_mod{i}.py"}))
    return [*turns, Turn.say("Done.")]


async def test_the_default_condenser_keeps_the_facts(tmp_path: Path, server: ScriptedLLMServer) -> None:
    turns = [*steps(0, 12), *steps(12, 12)]
    agent = make_agent(
        tmp_path, server, turns, prompt_token_budget=BUDGET, condenser_model="openai/summarizer"
    )
    server.set_script(
        Script(turns=(Turn.say("SUMMARY: modules created, tests pass."),), repeat=True), "summarizer"
    )
    agent.box.handler = lambda command: CommandResult("collected 3 items\n" + "." * 1500 + "\n3 passed\n", 0)
    session = await agent.manager.create(tmp_path)
    await session.prompt("Create pkg/mod0.py … each with a VALUE constant. Use Python 3.11.")
    await session.prompt("Change of plan: VALUE must be a string. Keep going from mod12.")

    events = session.store.events(session.id)
    condensations = [e for e in events if isinstance(e, Condensation)]
    assert {c.strategy for c in condensations} >= {"summary"}
    agent_requests = [
        r.body for r in server.requests if r.body is not None and r.body.get("model") == "scripted"
    ]
    summary_requests = [r.body for r in server.requests if r.body and r.body.get("model") == "summarizer"]
    assert summary_requests and "You summarize part of a coding agent's session" in json.dumps(
        summary_requests[0]
    )
    assert any(isinstance(e, UsageRecorded) and e.purpose == "condenser" for e in events)

    # After each condensation, the next prompt names every file edited so far and the latest requirement.
    created = 0
    for seq, body in _requests_after_each_condensation(events, agent_requests):
        text = "\n".join(
            str(m.get("content") or "") + json.dumps(m.get("tool_calls", [])) for m in body["messages"]
        )
        created = sum(
            1 for e in events if isinstance(e, ToolCallEvent) and e.seq < seq and '"create"' in e.arguments
        )
        assert all(f"pkg/mod{i}.py" in text for i in range(created)), seq
        latest = "Change of plan: VALUE must be a string." if created > 12 else "Use Python 3.11."
        assert latest in text
    assert created > 12  # a condensation happened in the second turn too

    largest = max(
        e.call.prompt_tokens for e in events if isinstance(e, UsageRecorded) and e.purpose == "step"
    )
    assert largest <= BUDGET + 1500  # the budget, plus the step that crossed it
    await agent.manager.aclose()


def _requests_after_each_condensation(
    events: list[Event], requests: list[dict[str, Any]]
) -> list[tuple[int, dict[str, Any]]]:
    """(condensation seq, the agent's next request) for each condensation."""
    usages = [e for e in events if isinstance(e, UsageRecorded) and e.purpose == "step"]
    out = []
    for condensation in (e for e in events if isinstance(e, Condensation)):
        index = sum(1 for u in usages if u.seq < condensation.seq)  # the requests made before it
        if index < len(requests):
            out.append((condensation.seq, requests[index]))
    return out
