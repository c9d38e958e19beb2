"""Bad input gets a clear error result, and the server keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from agent_mcp.server import SidehandMCP
from core.config import Settings
from tests.agent_mcp.conftest import hosted, text

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("get_task", {"task_id": "no-such-task"}, "unknown task 'no-such-task'"),
    ("cancel_task", {"task_id": "no-such-task"}, "unknown task"),
    ("apply_changes", {"id": "no-such-task"}, "unknown task"),
    ("discard_changes", {"id": "no-such-task"}, "unknown task"),
    ("answer_approval", {"task_id": "x", "call_id": "y", "allow": True}, "unknown task"),
    ("start_task", {"task": "x", "workspace": "/etc"}, "outside the allowed roots"),
    ("start_task", {"task": "x", "workspace": "../.."}, "outside the allowed roots"),
    ("sandbox_open", {"workspace": "/"}, "outside the allowed roots"),
    ("start_task", {"task": "x", "workspace": "missing-folder"}, "does not exist"),
    ("start_task", {"task": "x" * 100_001}, "at most 100000 characters"),
    ("start_task", {"task": ""}, "at least 1 character"),
    ("start_task", {"task": 42}, "valid string"),
    ("start_task", {"task": "x", "approval": "sometimes"}, "approval"),
    ("get_task", {"task_id": "x", "wait": 31}, "less than or equal to 30"),
    ("get_task", {"task_id": "x", "wait": "soon"}, "valid number"),
    ("get_task", {}, "task_id"),
    ("sandbox_run", {"sandbox_id": "sbx-1", "command": "ls", "timeout": -1}, "greater than 0"),
    ("sandbox_search", {"sandbox_id": "sbx-1", "pattern": "x", "max_results": 10**6}, "max_results"),
    ("apply_changes", {"id": "x", "paths": "not-a-list"}, "valid list"),
]


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"), BAD_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)]
)
async def test_bad_call_is_a_clear_error(
    client: Client, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert expected in text(result)
    assert (await client.call_tool("list_tasks", {})).is_error is False  # still serving


async def test_an_unknown_tool_is_an_error(client: Client) -> None:
    result = await client.call_tool("no_such_tool", {})
    assert result.is_error and "no_such_tool" in text(result)


async def test_no_model_configured_is_a_clear_error(server: SidehandMCP, client: Client) -> None:
    manager = server.app.manager
    manager.settings = Settings(sessions_dir=manager.settings.sessions_dir)  # as with no SIDEHAND_MODEL
    result = await client.call_tool("start_task", {"task": "x"})
    assert result.is_error and "no model configured" in text(result)


async def test_client_roots_are_the_default_roots(server: SidehandMCP, tmp_path: Path) -> None:
    from mcp.client.session import ClientRequestContext
    from mcp_types import ErrorData, ListRootsResult, Root

    other = tmp_path / "other"
    other.mkdir()
    server.app.configured_roots = []

    async def roots(context: ClientRequestContext) -> ListRootsResult | ErrorData:
        return ListRootsResult(roots=[Root(uri=other.as_uri())])

    async with hosted(Client(server, mode="legacy", list_roots_callback=roots)) as legacy:
        opened = await legacy.call_tool("sandbox_open", {})
        assert not opened.is_error and opened.structured_content is not None
        assert opened.structured_content["workspace"] == str(other)
        refused = await legacy.call_tool("sandbox_open", {"workspace": str(tmp_path / "ws")})
        assert refused.is_error and "outside the allowed roots" in text(refused)
