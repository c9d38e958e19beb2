"""Benchmark of the MCP front: tools/list latency, start_task -> first event, and the per-task
overhead with N concurrent tasks. Runs in process with the scripted LLM and in-memory sandboxes
(so it measures the front and the core, not Docker or a model), over the SDK's in-memory client.
The baseline, measured in the same run, is a session driven directly through SessionManager.

    .venv/bin/python -m bench.mcp_tasks [--tasks 4] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client

from agent_mcp.app import ServerConfig, SidehandApp
from agent_mcp.server import build_server
from core.config import Settings
from core.testing.fake_manager import build_fake_manager

STEPS = 5


def script() -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "bash", "arguments": {"command": f"echo step {n}"}}]} for n in range(STEPS)
    ]
    return [*turns, {"text": "Done."}]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


async def baseline(settings: Settings, script_path: Path, workspace: Path, n: int) -> float:
    """N tasks straight through SessionManager (no MCP): wall time."""
    manager = build_fake_manager(settings, script_path)
    started = time.perf_counter()
    sessions = [await manager.create(workspace, approval_mode="never") for _ in range(n)]
    await asyncio.gather(*(s.prompt("go") for s in sessions))
    elapsed = time.perf_counter() - started
    await manager.aclose()
    return elapsed


async def through_mcp(client: Client, n: int) -> tuple[float, list[float]]:
    """N tasks through start_task / get_task: wall time, and start_task -> first event per task."""
    started = time.perf_counter()
    firsts: list[float] = []
    ids = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await client.call_tool("start_task", {"task": "go", "approval": "never"})
        assert result.structured_content is not None, result
        task_id = result.structured_content["info"]["task_id"]
        ids.append(task_id)
        report = result.structured_content
        while not report["events"]:
            report = (
                await client.call_tool("get_task", {"task_id": task_id, "wait": 0})
            ).structured_content or {}
        firsts.append(time.perf_counter() - t0)
    for task_id in ids:
        while True:
            report = (
                await client.call_tool("get_task", {"task_id": task_id, "wait": 5})
            ).structured_content or {}
            if report["info"]["ended"] is not None:
                break
    return time.perf_counter() - started, firsts


async def main(tasks: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace = root / "ws"
        workspace.mkdir()
        (workspace / "app.py").write_text("print('hi')\n")
        script_path = root / "script.json"
        script_path.write_text(json.dumps(script()))
        settings = Settings(sessions_dir=root / "sessions", approval_mode="never")
        app = SidehandApp(
            build_fake_manager(settings, script_path), ServerConfig(roots=(workspace,), max_tasks=64)
        )
        server = build_server(app)
        async with Client(server) as client:
            await client.list_tools()  # warm-up
            lists = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                await client.list_tools()
                lists.append(time.perf_counter() - t0)
            await through_mcp(client, 1)  # warm-up
            base_1 = await baseline(settings, script_path, workspace, 1)
            mcp_1, firsts_1 = await through_mcp(client, 1)
            base_n = await baseline(settings, script_path, workspace, tasks)
            mcp_n, firsts_n = await through_mcp(client, tasks)
        await app.aclose()

    print(f"MCP front benchmark ({STEPS} tool steps per task, scripted LLM, in-memory sandbox)")
    print(f"tools/list                       median {ms(statistics.median(lists))}  (n={repeat})")
    print(f"start_task -> first event, 1     {ms(firsts_1[0])}")
    print(f"start_task -> first event, {tasks:<4}  median {ms(statistics.median(firsts_n))}")
    print(f"1 task:   direct {ms(base_1)}   via MCP {ms(mcp_1)}   ratio {mcp_1 / base_1:5.2f}x")
    print(f"{tasks} tasks:  direct {ms(base_n)}   via MCP {ms(mcp_n)}   ratio {mcp_n / base_n:5.2f}x")
    print(f"per-task overhead of the MCP front with {tasks} concurrent tasks: {ms((mcp_n - base_n) / tasks)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=4, help="concurrent tasks (default 4)")
    parser.add_argument("--repeat", type=int, default=20, help="tools/list samples (default 20)")
    options = parser.parse_args()
    asyncio.run(main(options.tasks, options.repeat))
