"""The MCP server on the real path: litellm to the scripted HTTP model server, one Docker sandbox
per task. Four tasks at once, each in its own container, all finishing with correct results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import docker
import pytest
from mcp import Client

from agent_mcp.app import ServerConfig, SidehandApp
from agent_mcp.server import build_server
from core.config import Settings
from core.testing.scripted_server import Script, ScriptedLLMServer, ScriptSet, Turn
from sidehand.wiring import build_manager
from tests.agent_mcp.conftest import data, hosted

pytestmark = pytest.mark.docker


def task_script(n: int) -> Script:
    return Script(
        turns=(
            Turn.call(
                "editor",
                {"command": "create", "path": f"/workspace/out{n}.py", "file_text": f"print({n} * 7)\n"},
            ),
            Turn.call(
                "bash",
                {
                    "command": f"python3 out{n}.py > result{n}.txt && cat result{n}.txt && ls /workspace | wc -l"
                },
            ),
            Turn.call("finish", {"message": f"Task {n} done."}),
        )
    )


@pytest.fixture
async def real_client(tmp_path: Path) -> AsyncIterator[tuple[Client, ScriptedLLMServer, Path]]:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    scripts = ScriptSet(models={f"model-{n}": task_script(n) for n in range(4)})
    with ScriptedLLMServer(scripts) as model:
        settings = Settings.model_validate(
            {
                "model": "openai/model-0",
                "api_base": model.base_url,
                "api_key": "sk-test-not-a-real-key",
                "sessions_dir": tmp_path / "sessions",
                "approval_mode": "never",
            }
        )
        app = SidehandApp(build_manager(settings), ServerConfig(roots=(workspace,), approval_timeout=5.0))
        try:
            async with hosted(Client(build_server(app), read_timeout_seconds=60)) as client:
                yield client, model, workspace
        finally:
            await app.aclose()


async def test_four_tasks_at_once_in_four_docker_sandboxes(
    real_client: tuple[Client, ScriptedLLMServer, Path],
) -> None:
    client, _, workspace = real_client
    ids = []
    for n in range(4):
        args: dict[str, Any] = {"task": f"task {n}", "workspace": str(workspace), "approval": "never"}
        args["model"] = f"openai/model-{n}"
        ids.append(data(await client.call_tool("start_task", args))["info"]["task_id"])
    reports: dict[str, dict[str, Any]] = {}

    async def follow(task_id: str) -> None:
        with anyio.fail_after(120):
            while True:
                report = data(await client.call_tool("get_task", {"task_id": task_id, "wait": 10}))
                if report["info"]["ended"] is not None:
                    reports[task_id] = report
                    return

    async with anyio.create_task_group() as tg:
        for task_id in ids:
            tg.start_soon(follow, task_id)
    for n, task_id in enumerate(ids):
        report = reports[task_id]
        assert report["info"]["message"] == f"Task {n} done.", report
        assert sorted(f["path"] for f in report["changes"]["files"]) == [f"out{n}.py", f"result{n}.txt"]
        # an event brief folds the output into one line: "bash ok, exit 0: <n*7> <files> [exit code: 0]"
        ran = next(
            e["summary"]
            for e in report["events"]
            if e["kind"] == "tool_result" and "exit code" in e["summary"]
        )
        words = ran.split(": ", 1)[1].split()
        assert words[0] == str(n * 7), ran
        assert words[1] == "2", ran  # its own two files only: each task has its own sandbox
    assert not list(workspace.iterdir())  # nothing reached the host before apply
    for task_id in ids:
        await client.call_tool("apply_changes", {"id": task_id})
    assert sorted(p.name for p in workspace.glob("result*.txt")) == [f"result{n}.txt" for n in range(4)]
    assert (workspace / "result3.txt").read_text() == "21\n"
    for task_id in ids:
        await client.call_tool("discard_changes", {"id": task_id})
    left = docker.from_env().containers.list(all=True, filters={"label": "sidehand=1"})
    assert not [c for c in left if any(c.labels.get("sidehand.session") == i for i in ids)]
