"""The bash tool puts the sandbox's facts (timed out, interrupted, still running, shell or sandbox
restarted, exit code, where a cut output is) into words for the model: each note once, whatever
the sandbox is. And it routes a call to the running command: wait, input, Ctrl-C, or refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.output import OutputBudget
from core.protocols import MAX_COMMAND_BYTES, CommandResult
from core.testing.fake_sandbox import InMemorySandbox
from core.tools import ToolContext
from core.tools.bash import BashParams, BashTool


def context(sandbox: InMemorySandbox, tmp_path: Path) -> ToolContext:
    return ToolContext(
        sandbox=sandbox,
        outputs=OutputBudget(tmp_path, 1000, 1000),
        call_id="c1",
        command_timeout=7,
        quiet_timeout=0.05,
    )


async def observe(result: CommandResult, tmp_path: Path) -> str:
    sandbox = InMemorySandbox(handler=lambda command: result)
    return (await BashTool().execute(BashParams(command="anything"), context(sandbox, tmp_path))).output


@pytest.mark.parametrize(
    ("result", "notes"),
    [
        (CommandResult("out\n", 0), ["[exit code: 0]"]),
        (
            CommandResult("", None, timed_out=True),
            ["timed out after 7 s (the limit for a command) and was killed"],
        ),
        (CommandResult("", None, interrupted=True), ["was interrupted"]),
        (CommandResult("", 3, shell_restarted=True), ["shell exited and was restarted", "[exit code: 3]"]),
        (
            CommandResult("", None, timed_out=True, shell_restarted=True),
            ["timed out after 7 s", "did not stop when its processes were killed"],
        ),
        (
            CommandResult("so far", None, running=True, elapsed=12.3),
            ["still running (12 s so far) | killed after 7 s in all"],
        ),
        (
            CommandResult("x", None, truncated=True, sandbox_output_path="/tmp/sidehand/output/c1.txt"),
            ["all of it is in /tmp/sidehand/output/c1.txt"],
        ),
        (CommandResult("x", None, truncated=True), ["too long to keep"]),
        (
            CommandResult("", None, shell_restarted=True, sandbox_restarted=True),
            ["reached its process limit | background jobs included"],
        ),
    ],
    ids=["ok", "timeout", "interrupt", "exit", "wedged", "running", "cut", "cut-not-kept", "fork-bomb"],
)
async def test_each_fact_is_said_once(result: CommandResult, notes: list[str], tmp_path: Path) -> None:
    text = await observe(result, tmp_path)
    for note in (phrase for n in notes for phrase in n.split(" | ")):
        assert text.count(note) == 1, text
    # one bracketed note per fact (the phrases of one note are joined by " | " above)
    assert text.count("[") == len(notes), text  # and nothing else was added


async def test_no_host_path_reaches_the_model(tmp_path: Path) -> None:
    result = CommandResult(
        "head\n[... 10 bytes truncated ...]\ntail",
        None,
        truncated=True,
        full_output_path=tmp_path / "c1.txt",
        sandbox_output_path="/tmp/sidehand/output/c1.txt",
    )
    text = await observe(result, tmp_path)
    assert str(tmp_path) not in text and "/tmp/sidehand/output/c1.txt" in text


async def test_the_end_of_the_previous_command_comes_first(tmp_path: Path) -> None:
    previous = CommandResult("served 3 requests\n", 0)
    text = await observe(CommandResult("mine\n", 0, previous=previous), tmp_path)
    assert text.index("ended after its last call returned (exit code 0)") < text.index("served 3")
    assert text.index("served 3") < text.index("mine")


async def test_a_call_routes_to_the_running_command(tmp_path: Path) -> None:
    sandbox = InMemorySandbox()
    tool, ctx = BashTool(), context(sandbox, tmp_path)
    started = await tool.execute(BashParams(command="sleep 100"), ctx)
    assert "still running" in started.output and sandbox.running_command() is not None
    refused = await tool.execute(BashParams(command="ls"), ctx)
    assert refused.error and "Not run: the previous command (`sleep 100`) is still running" in refused.output
    assert sandbox.commands == ["sleep 100"]
    waited = await tool.execute(BashParams(command=""), ctx)
    assert "still running" in waited.output
    typed = await tool.execute(BashParams(command="yes", is_input=True), ctx)
    assert sandbox.inputs == [b"yes\n"] and "still running" in typed.output
    stopped = await tool.execute(BashParams(command=" C-c "), ctx)
    assert "was interrupted" in stopped.output and sandbox.interrupts == 1
    assert sandbox.running_command() is None
    for params, says in (
        (BashParams(command=""), "nothing to wait for"),
        (BashParams(command="C-c"), "nothing to interrupt"),
        (BashParams(command="y", is_input=True), "nothing to send input to"),
        (BashParams(command="C-d"), "C-d cannot be sent here"),
    ):
        answer = await tool.execute(params, ctx)
        assert answer.error and says in answer.output, answer.output


async def test_too_long_a_command_or_input_is_refused(tmp_path: Path) -> None:
    sandbox = InMemorySandbox()
    tool, ctx = BashTool(), context(sandbox, tmp_path)
    long = await tool.execute(BashParams(command="x" * (MAX_COMMAND_BYTES + 1)), ctx)
    assert long.error and f"limited to {MAX_COMMAND_BYTES} bytes" in long.output and sandbox.commands == []
    await tool.execute(BashParams(command="sleep 100"), ctx)
    big = await tool.execute(BashParams(command="y" * 5000, is_input=True), ctx)
    assert big.error and "at most 4096" in big.output and sandbox.inputs == []


def test_the_description_states_the_timeouts() -> None:
    spec = BashTool().spec_for(Settings(command_quiet_timeout=4, command_timeout=90))
    assert "printed nothing for 4 seconds" in spec.description
    assert "killed after 90 seconds in all" in spec.description
    assert "`set -e` lasts for one command" in spec.description
    assert set(spec.parameters["properties"]) == {"command", "is_input", "timeout"}
