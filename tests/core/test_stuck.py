"""The stuck detector (core/stuck.py): its patterns on steps, and in a session driven through the
scripted model server (a nudge the model receives, then stop reason `stuck`)."""

from __future__ import annotations

import itertools
from pathlib import Path

from core.events import Nudge
from core.protocols import CommandResult
from core.stuck import Call, Step, StuckDetector, detect
from core.testing.scripted_server import ScriptedLLMServer, Turn
from tests.core.conftest import make_agent


def step(
    tool: str = "bash", arguments: str = '{"command": "ls"}', output: str = "a b", error: bool = False
) -> Step:
    return Step((Call(tool, arguments, output, error),))


def test_the_patterns() -> None:
    same = [step()] * 4
    assert detect(same[:3]) is None
    found = detect(same)
    assert found is not None and found.pattern == "repeated_action" and "bash" in found.what
    # the arguments' JSON formatting does not make a different action
    assert detect([step(arguments='{"command":"ls"}'), *same[:3]]) is not None
    errors = [step(output="boom", error=True)] * 3
    assert (f := detect(errors)) is not None and f.pattern == "repeated_error"
    varied = [step(arguments=f'{{"command": "x{i}"}}', output="Unknown tool", error=True) for i in range(5)]
    assert (f := detect(varied)) is not None and f.pattern == "repeated_error" and "Unknown tool" in f.what
    thinking = [step("think", f'{{"thought": "{i}"}}', "Your thought has been logged.") for i in range(6)]
    assert (f := detect(thinking)) is not None and f.pattern == "monologue"
    a, b = step(arguments='{"command": "a"}', output="1"), step(arguments='{"command": "b"}', output="2")
    assert (f := detect([a, b] * 3)) is not None and f.pattern == "alternation"
    assert detect([a, b] * 2) is None


def test_polling_a_job_whose_output_changes_is_not_stuck() -> None:
    polls = [step(arguments='{"command": "tail -1 build.log"}', output=f"{i}% built") for i in range(40)]
    assert all(detect(polls[: i + 1]) is None for i in range(40))
    flaky = [step(output=f"attempt {i}: failed", error=True) for i in range(10)]
    assert all(detect(flaky[: i + 1]) is None for i in range(10))


def test_a_nudge_first_then_stop_and_a_new_spell_is_nudged_again() -> None:
    detector = StuckDetector()
    calls = [Call("bash", '{"command": "ls"}', "x", False)]
    verdicts = [detector.after_step(calls) for _ in range(5)]
    assert verdicts[:3] == [None, None, None]
    assert verdicts[3] is not None and verdicts[3].action == "nudge" and "stuck" in verdicts[3].text
    assert verdicts[4] is not None and verdicts[4].action == "stop"
    detector.start_turn()
    detector.after_step([Call("bash", '{"command": "pwd"}', "/", False)])
    assert [detector.after_step(calls) for _ in range(4)][-1].action == "nudge"  # type: ignore[union-attr]


async def test_thirty_identical_calls_are_nudged_then_stopped(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    turns = [Turn.call("bash", {"command": "cat missing.txt"}) for _ in range(30)]
    agent = make_agent(tmp_path, server, turns, max_iterations=40)
    agent.box.handler = lambda command: CommandResult("cat: missing.txt: No such file\n", 1)
    session = await agent.manager.create(tmp_path)
    end = await session.prompt("read missing.txt")
    assert end.stop_reason == "stuck" and end.iterations == 4
    assert "cat missing.txt" in end.message and "failed 3 times in a row with the same error" in end.message
    [nudge] = [e for e in session.store.events(session.id) if isinstance(e, Nudge)]
    assert nudge.pattern == "repeated_error"
    nudged = agent.bodies()[3]["messages"][-1]
    assert nudged["role"] == "user" and nudged["content"] == nudge.text
    assert len(agent.bodies()) == 4  # 30 were scripted; it stopped after the nudge did not help
    assert session.state.status == "stuck"
    await agent.manager.aclose()


async def test_an_agent_polling_a_long_job_is_not_stopped(tmp_path: Path, server: ScriptedLLMServer) -> None:
    turns = [*(Turn.call("bash", {"command": "tail -1 build.log"}) for _ in range(12)), Turn.say("Built.")]
    agent = make_agent(tmp_path, server, turns)
    progress = itertools.count(5, 5)
    agent.box.handler = lambda command: CommandResult(f"{next(progress)}% built\n", 0)
    session = await agent.manager.create(tmp_path)
    end = await session.prompt("wait for the build")
    assert end.stop_reason == "end_turn" and end.message == "Built."
    assert not [e for e in session.store.events(session.id) if isinstance(e, Nudge)]
    await agent.manager.aclose()
