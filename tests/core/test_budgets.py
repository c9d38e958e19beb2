"""A task's limits (core/budgets.py): tokens, cost and wall clock, each checked before every model
call (one call of overshoot at most) and ending the turn with its own stop reason; the wall clock
also stops a step still running."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.budgets import TurnBudget
from core.config import Settings
from core.events import ApprovalRejected, ToolResultEvent
from core.messages import Usage
from core.sessions import SessionManager
from core.testing.fake_sandbox import FakeSandboxFactory, InMemorySandbox
from core.testing.scripted_llm import ScriptedLLM, call, reply
from core.testing.scripted_server import ScriptedLLMServer, Turn
from tests.core.conftest import make_agent


def test_the_limits_count_what_the_task_spent() -> None:
    now = [100.0]
    settings = Settings(max_budget=1.0, max_tokens=1000, turn_timeout=30)
    budget = TurnBudget(
        settings, Usage(prompt_tokens=5000, completion_tokens=0, cost=9.0), clock=lambda: now[0]
    )
    assert budget.check(Usage(prompt_tokens=5500, completion_tokens=100, cost=9.5)) is None
    assert budget.check(Usage(prompt_tokens=5900, completion_tokens=100, cost=9.5)) == (
        "max_tokens",
        "the task used 1000 tokens (the limit is 1000)",
    )
    limit = budget.check(Usage(prompt_tokens=5000, completion_tokens=0, cost=10.0))
    assert limit is not None and limit[0] == "budget" and "$1" in limit[1]
    now[0] = 130.0
    assert budget.check(Usage(prompt_tokens=5000, cost=9.0)) == ("timeout", "the task ran out of time (30 s)")
    assert TurnBudget(Settings(), Usage()).check(Usage(prompt_tokens=10**9, cost=10**6)) is None


async def test_max_tokens_stops_before_the_next_model_call(tmp_path: Path, server: ScriptedLLMServer) -> None:
    turns = [Turn.call("think", {"thought": str(i)}) for i in range(10)]
    agent = make_agent(tmp_path, server, turns, max_tokens=2000)
    session = await agent.manager.create(tmp_path)
    end = await session.prompt("think a lot")
    assert end.stop_reason == "max_tokens" and "the limit is 2000" in end.message
    spent = session.state.usage.prompt_tokens + session.state.usage.completion_tokens
    per_call = spent / len(agent.bodies())
    assert 2000 <= spent < 2000 + 2 * per_call  # one call of overshoot at most
    assert session.state.status == "idle" and end.iterations == len(agent.bodies())
    await agent.manager.aclose()


async def test_the_budget_is_per_task(tmp_path: Path) -> None:
    llm = ScriptedLLM(
        [reply(None, call("think", {"thought": "t"}, call_id=f"c{i}"), cost=0.4) for i in range(8)]
    )
    settings = Settings(model="scripted", sessions_dir=tmp_path / "s", max_budget=1.0, user_skills_dir=None)

    async def sandbox(workspace: Path, session_id: str) -> InMemorySandbox:
        return InMemorySandbox()

    manager = SessionManager(settings, FakeSandboxFactory(sandbox), lambda _: llm)
    session = await manager.create(tmp_path)
    first = await session.prompt("spend")
    assert first.stop_reason == "budget" and first.iterations == 3  # 0.4 + 0.4 + 0.4 >= 1.0
    second = await session.prompt("spend again")  # a new task: its own budget
    assert second.stop_reason == "budget" and second.iterations == 3
    assert session.state.usage.cost == pytest.approx(2.4)
    await manager.aclose()


async def test_the_timeout_kills_a_running_command(tmp_path: Path, server: ScriptedLLMServer) -> None:
    agent = make_agent(tmp_path, server, [Turn.call("bash", {"command": "sleep 100"})], turn_timeout=0.5)
    session = await agent.manager.create(tmp_path)
    end = await session.prompt("wait forever")
    assert end.stop_reason == "timeout" and end.message == "the task ran out of time (0.5 s)"
    assert agent.box.interrupts == 1
    result = [e for e in session.store.events(session.id) if isinstance(e, ToolResultEvent)][-1]
    assert result.error and result.output == "Not completed: the task ran out of time (0.5 s)."
    assert session.state.status == "idle"
    await agent.manager.aclose()


async def test_the_timeout_ends_a_wait_for_approval_and_a_held_model_call(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    turns = [Turn.call("bash", {"command": "make install"}), Turn.say("never", hold=True)]
    agent = make_agent(tmp_path, server, turns, turn_timeout=0.5, approval_mode="always")
    session = await agent.manager.create(tmp_path)
    end = await session.prompt("install")  # nobody answers the approval
    assert end.stop_reason == "timeout"
    [rejected] = [e for e in session.store.events(session.id) if isinstance(e, ApprovalRejected)]
    assert rejected.cancelled
    agent.box.handler = None
    session.settings = session.settings.model_copy(update={"approval_mode": "never"})
    end = await session.prompt("again")  # the model holds its reply past the deadline
    assert end.stop_reason == "timeout"
    server.release()
    await agent.manager.aclose()
