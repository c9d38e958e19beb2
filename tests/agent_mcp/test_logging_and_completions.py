"""The `logging` capability (the agent's progress as log messages, level settable) and
`completion/complete` (session ids, skill names, earlier tasks), on both protocol eras."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import (
    LoggingLevel,
    LoggingMessageNotificationParams,
    PromptReference,
    ResourceTemplateReference,
)

from agent_mcp.server import SidehandMCP
from tests.agent_mcp.conftest import ScriptWriter, bash, data, hosted, say

SCRIPT = [bash("echo one"), bash("exit 3"), say("Done.")]


class Logs:
    def __init__(self) -> None:
        self.messages: list[LoggingMessageNotificationParams] = []

    async def __call__(self, params: LoggingMessageNotificationParams) -> None:
        self.messages.append(params)

    def kinds(self) -> list[tuple[str, str]]:
        return [(m.level, m.data["kind"]) for m in self.messages]


async def set_level(client: Client, level: Any) -> None:
    with warnings.catch_warnings():  # the client marks it deprecated (2026-07-28); older servers use it
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.set_logging_level(level)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_both_capabilities_are_declared(server: SidehandMCP, mode: str) -> None:
    async with hosted(Client(server, mode=mode)) as client:
        assert client.server_capabilities.completions is not None
        if mode == "legacy":  # 2026-07-28 has no logging capability: a client opts in per request
            assert client.server_capabilities.logging is not None


async def test_run_task_logs_progress_at_the_level_set(server: SidehandMCP, script: ScriptWriter) -> None:
    logs = Logs()
    async with hosted(Client(server, mode="legacy", logging_callback=logs)) as client:
        script(SCRIPT)
        await set_level(client, "debug")
        report = data(await client.call_tool("run_task", {"task": "echo", "approval": "never"}))
        kinds = logs.kinds()
        assert ("info", "tool_call") in kinds and ("warning", "tool_result") in kinds
        assert ("debug", "state_changed") in kinds and ("notice", "turn_ended") in kinds
        assert all(
            m.logger == "sidehand" and m.data["task"] == report["info"]["task_id"] for m in logs.messages
        )
        logs.messages.clear()
        script(SCRIPT)
        await set_level(client, "warning")
        await client.call_tool("run_task", {"task": "echo again", "approval": "never"})
        assert logs.kinds() == [("warning", "tool_result")]  # `exit 3` failed; nothing below warning


async def test_a_started_task_logs_on_the_connection(server: SidehandMCP, script: ScriptWriter) -> None:
    logs = Logs()
    script(SCRIPT)
    async with hosted(Client(server, mode="legacy", logging_callback=logs)) as client:
        report = data(await client.call_tool("start_task", {"task": "echo", "approval": "never"}))
        with anyio.fail_after(10):
            while ("notice", "turn_ended") not in logs.kinds():
                await client.call_tool("get_task", {"task_id": report["info"]["task_id"], "wait": 1})
    assert ("info", "tool_call") in logs.kinds()


@pytest.mark.parametrize(("level", "expected"), [("info", True), (None, False)])
async def test_on_2026_07_28_a_request_opts_in_to_log_messages(
    server: SidehandMCP, script: ScriptWriter, level: LoggingLevel | None, expected: bool
) -> None:
    logs = Logs()
    script(SCRIPT)
    async with hosted(Client(server, log_level=level, logging_callback=logs)) as client:
        assert client.protocol_version == "2026-07-28"
        await client.call_tool("run_task", {"task": "echo", "approval": "never"})
    assert (("info", "tool_call") in logs.kinds()) is expected
    assert all(m.level != "debug" for m in logs.messages)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_completions(server: SidehandMCP, script: ScriptWriter, workspace: Path, mode: str) -> None:
    skills = workspace / ".agents" / "skills"
    skills.mkdir(parents=True)
    (skills / "release.md").write_text("# Release\n")
    (skills / "review.md").write_text("# Review\n")
    script([say("Done.")])
    async with hosted(Client(server, mode=mode)) as client:
        report = data(await client.call_tool("run_task", {"task": "Clean the build", "approval": "never"}))
        task_id = report["info"]["task_id"]
        events = ResourceTemplateReference(uri="sidehand://sessions/{session_id}/events")
        ids = (await client.complete(events, {"name": "session_id", "value": task_id[:8]})).completion
        assert task_id in ids.values
        none = (await client.complete(events, {"name": "session_id", "value": "zz"})).completion
        assert none.values == [] and none.total == 0
        skill = ResourceTemplateReference(uri="sidehand://skills/{name}")
        names = (await client.complete(skill, {"name": "name", "value": "re"})).completion
        assert names.values == ["release", "review"]
        prompt = PromptReference(name="release")
        tasks = (await client.complete(prompt, {"name": "task", "value": "clean"})).completion
        assert tasks.values == ["Clean the build"]
        text = await client.read_resource("sidehand://skills/review")
        assert "# Review" in str(text.contents[0])
