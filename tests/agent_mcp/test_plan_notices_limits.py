"""The agent's plan, notices and a task's limits through the MCP front (the SDK's in-memory client):
plan changes as progress messages and in the report, notices as log messages, `timeout` and
`max_cost` as task options with their own status, and a malformed skill reported when prompts are
listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp_types import LoggingMessageNotificationParams, TextResourceContents

from agent_mcp.server import SidehandMCP
from tests.agent_mcp.conftest import ScriptWriter, data, hosted, say

PLAN = [
    {"content": "Read app.py", "status": "completed", "priority": "high"},
    {"content": "Add a farewell", "status": "in_progress", "priority": "medium"},
]


def logging_client(server: SidehandMCP, logged: list[str]) -> Client:
    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logged.append(f"{params.level}: {params.data}")

    return Client(server, read_timeout_seconds=20, logging_callback=on_log, log_level="info")


def broken_skill(workspace: Path) -> None:
    folder = workspace / ".agents" / "skills" / "broken"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text("---\nname: [oops\n---\nbody\n")


async def test_run_task_reports_the_plan_and_logs_notices(
    server: SidehandMCP, script: ScriptWriter, workspace: Path
) -> None:
    broken_skill(workspace)
    script([{"tool_calls": [{"name": "plan", "arguments": {"items": PLAN}}]}, say("Planned.")])
    logged: list[str] = []
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with hosted(logging_client(server, logged)) as client:
        with anyio.fail_after(20):
            result = await client.call_tool(
                "run_task", {"task": "plan it", "approval": "never"}, progress_callback=on_progress
            )
        report = data(result)
        assert report["plan"] == PLAN
        assert "plan (1/2 done): [x] Read app.py; [>] Add a farewell" in report_text(result)
        assert "plan (1/2 done): [x] Read app.py; [>] Add a farewell" in messages
        assert any(line.startswith("warning: skill file .agents/skills/broken/SKILL.md") for line in logged)
        task_id = report["info"]["task_id"]
        logged.clear()
        polled = data(await client.call_tool("get_task", {"task_id": task_id, "since": -1}))
        assert polled["plan"] == PLAN
        assert logged == []  # each notice is logged once, here by run_task
        contents = (await client.read_resource(f"sidehand://sessions/{task_id}/transcript")).contents[0]
        assert isinstance(contents, TextResourceContents)
        assert "**Plan**\n\n- [x] Read app.py\n- [>] Add a farewell" in contents.text
        assert "*Warning: skill file .agents/skills/broken/SKILL.md" in contents.text
        logged.clear()
        await client.list_prompts()  # the prompts are skills: the broken one is reported
        assert any("broken/SKILL.md" in line and "not valid YAML" in line for line in logged)


def report_text(result: Any) -> str:
    return str(result.content[0].text)


async def test_a_task_with_a_timeout_ends_with_status_timeout(client: Client, script: ScriptWriter) -> None:
    script([{"tool_calls": [{"name": "bash", "arguments": {"command": "sleep 1000"}}]}])
    with anyio.fail_after(20):
        result = await client.call_tool("run_task", {"task": "wait", "approval": "never", "timeout": 0.5})
    info = data(result)["info"]
    assert info["status"] == "timeout" and info["stop_reason"] == "timeout"
    assert "ran out of time (0.5 s)" in info["message"]
    refused = await client.call_tool("start_task", {"task": "x", "timeout": -1})
    assert refused.is_error


async def test_get_task_logs_each_notice_once(
    server: SidehandMCP, script: ScriptWriter, workspace: Path
) -> None:
    broken_skill(workspace)
    script([say("Done.")])
    logged: list[str] = []
    async with hosted(logging_client(server, logged)) as client:
        started = data(await client.call_tool("start_task", {"task": "go", "approval": "never"}))
        task_id = started["info"]["task_id"]
        with anyio.fail_after(20):
            while (
                data(await client.call_tool("get_task", {"task_id": task_id, "wait": 5}))["info"]["ended"]
                is None
            ):
                pass
        assert len([line for line in logged if "broken/SKILL.md" in line]) == 1
        await client.call_tool("get_task", {"task_id": task_id})
        assert len([line for line in logged if "broken/SKILL.md" in line]) == 1
