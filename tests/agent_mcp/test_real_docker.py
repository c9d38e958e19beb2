"""The MCP server on the real path: litellm to the scripted HTTP model server, one Docker sandbox
per task. Four tasks at once, each in its own container, all finishing with correct results."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import docker
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from agent_mcp.app import ServerConfig, SidehandApp
from agent_mcp.server import build_server
from core.config import Settings
from core.events import TurnEnded
from core.store import SessionStore
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


def real_env(tmp_path: Path, model: ScriptedLLMServer, workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env.update(
        SIDEHAND_MODEL="openai/scripted",
        SIDEHAND_API_BASE=model.base_url,
        SIDEHAND_API_KEY="sk-test-not-a-real-key",
        SIDEHAND_SESSIONS_DIR=str(tmp_path / "sessions"),
        SIDEHAND_CONFIG=str(tmp_path / "no-config.toml"),
        SIDEHAND_MCP_ROOTS=str(workspace),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    return env


async def test_odd_file_names_over_stdio_keep_the_server_alive(tmp_path: Path) -> None:
    """`sidehand mcp` itself (stdio, Docker): a name that is not UTF-8 and one holding a newline
    used to kill the server when sandbox_diff serialised them."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with ScriptedLLMServer(Script()) as model:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "sidehand", "mcp"], env=real_env(tmp_path, model, workspace)
        )
        with anyio.fail_after(90):
            async with Client(params, read_timeout_seconds=60) as client:
                box = data(await client.call_tool("sandbox_open", {}))["sandbox_id"]
                command = (
                    "printf latin > \"$(printf 'caf\\351.txt')\"; printf nl > \"$(printf 'new\\nline')\""
                )
                ran = data(await client.call_tool("sandbox_run", {"sandbox_id": box, "command": command}))
                assert ran["exit_code"] == 0
                diff = data(await client.call_tool("sandbox_diff", {"sandbox_id": box}))
                assert sorted(f["path"] for f in diff["files"]) == ["caf\\xe9.txt", "new\\nline"]
                assert '"b/caf\\351.txt"' in diff["patch"]
                applied = data(
                    await client.call_tool("apply_changes", {"id": box, "paths": ["caf\\xe9.txt"]})
                )
                assert applied["written"] == ["caf\\xe9.txt"] and applied["remaining"] == ["new\\nline"]
                assert (workspace / os.fsdecode(b"caf\xe9.txt")).read_bytes() == b"latin"
                assert data(await client.call_tool("list_tasks", {}))["tasks"] == []  # still serving
                await client.call_tool("sandbox_close", {"sandbox_id": box})


async def test_sigterm_interrupts_tasks_and_removes_their_sandboxes(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    script = Script(turns=(Turn.call("bash", {"command": "sleep 300"}),))
    with ScriptedLLMServer(script) as model:
        env = real_env(tmp_path, model, workspace)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sidehand", "mcp", "--http", "--port", "0",
            "--token-file", str(tmp_path / "token"), env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        try:
            with anyio.fail_after(30):
                while not (
                    m := re.search(r"listening on (http://\S+)", (await proc.stderr.readline()).decode())
                ):
                    pass
            url, token = m[1], (tmp_path / "token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            with anyio.fail_after(120):
                async with (
                    create_mcp_http_client(headers=headers) as http,
                    Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60) as client,
                ):
                    task = data(await client.call_tool("start_task", {"task": "wait", "approval": "never"}))
                    task_id = task["info"]["task_id"]
                    while "tool_call" not in str(
                        data(await client.call_tool("get_task", {"task_id": task_id, "wait": 5}))["events"]
                    ):
                        pass
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                await proc.wait()
            assert time.monotonic() - started < 15  # within seconds
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    left = docker.from_env().containers.list(all=True, filters={"label": f"sidehand.session={task_id}"})
    assert left == []
    store = SessionStore(tmp_path / "sessions")
    ended = [e for e in store.events(task_id) if isinstance(e, TurnEnded)]
    assert [e.stop_reason for e in ended] == ["interrupted"]


async def test_the_live_mirror_over_stdio(tmp_path: Path) -> None:
    """`sidehand mcp` on Docker: what the user saves is what the next command sees; an ignored
    folder stays out; a file both sides changed is a conflict that neither side loses."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".gitignore").write_text("build/\n")
    (workspace / "notes.txt").write_text("v1\n")
    (workspace / "shared.txt").write_text("base\n")
    with ScriptedLLMServer(Script()) as model:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "sidehand", "mcp"], env=real_env(tmp_path, model, workspace)
        )
        with anyio.fail_after(90):
            async with Client(params, read_timeout_seconds=60) as client:
                box = data(await client.call_tool("sandbox_open", {}))["sandbox_id"]

                async def run(command: str) -> str:
                    ran = data(await client.call_tool("sandbox_run", {"sandbox_id": box, "command": command}))
                    return str(ran["output"])

                (workspace / "notes.txt").write_text("v2 saved by the user\n")
                (workspace / "build").mkdir()
                (workspace / "build" / "out.js").write_text("generated\n")
                (workspace / "fresh.txt").write_text("new file\n")
                seen = ""
                for _ in range(100):  # each run is one command; the save lands within milliseconds
                    seen = await run("cat notes.txt fresh.txt 2>&1; ls build 2>&1 | head -1")
                    if "v2" in seen and "new file" in seen:
                        break
                # (after a note naming the files, when they arrived between two commands)
                assert "v2 saved by the user\nnew file\n" in seen and "No such file" in seen
                await run("echo agent > shared.txt")
                (workspace / "shared.txt").write_text("user\n")
                for _ in range(100):
                    diff = data(await client.call_tool("sandbox_diff", {"sandbox_id": box}))
                    if diff["files"] and diff["files"][0]["conflict"]:
                        break
                [change] = diff["files"]
                assert change["path"] == "shared.txt" and change["conflict"]
                assert "+user" in change["host_diff"] and "+agent" in diff["patch"]
                kept = await run("cat shared.txt")
                assert "also changed files you had changed: shared.txt" in kept  # the client is told
                assert "\nagent\n" in kept  # and the agent's version is kept
                refused = await client.call_tool("apply_changes", {"id": box})
                assert refused.is_error and "shared.txt" in str(refused.content)
                assert (workspace / "shared.txt").read_text() == "user\n"  # and the user's
                await client.call_tool("sandbox_close", {"sandbox_id": box})
