"""The bash tool puts the sandbox's facts (timed out, interrupted, shell restarted, exit code) into
words for the model: each note once, whatever the sandbox is."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.output import OutputBudget
from core.protocols import CommandResult
from core.testing.fake_sandbox import InMemorySandbox
from core.tools import ToolContext
from core.tools.bash import BashParams, BashTool


async def observe(result: CommandResult, tmp_path: Path) -> str:
    sandbox = InMemorySandbox(handler=lambda command: result)
    ctx = ToolContext(
        sandbox=sandbox, outputs=OutputBudget(tmp_path, 1000, 1000), call_id="c1", command_timeout=7
    )
    return (await BashTool().execute(BashParams(command="anything"), ctx)).output


@pytest.mark.parametrize(
    ("result", "notes"),
    [
        (CommandResult("out\n", 0), ["[exit code: 0]"]),
        (CommandResult("", None, timed_out=True), ["timed out after 7s"]),
        (CommandResult("", None, interrupted=True), ["was interrupted"]),
        (CommandResult("", 3, shell_restarted=True), ["shell exited and was restarted", "[exit code: 3]"]),
        (
            CommandResult("", None, timed_out=True, shell_restarted=True),
            ["timed out after 7s", "did not stop when its processes were killed"],
        ),
    ],
    ids=["ok", "timeout", "interrupt", "exit", "wedged"],
)
async def test_each_fact_is_said_once(result: CommandResult, notes: list[str], tmp_path: Path) -> None:
    text = await observe(result, tmp_path)
    for note in notes:
        assert text.count(note) == 1, text
    assert text.count("[") == len(notes)  # and nothing else was added
