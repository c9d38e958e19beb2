"""`sidehand mcp` as a user runs it: a subprocess driven by the official MCP client over stdio and
over streamable HTTP (bearer token, 401s, Host checks, the loopback rule). The server is its own
entry point given a fake manager factory (tests/support/fake_server.py): the scripted LLM and
in-memory sandboxes."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import ElicitRequestParams, ElicitResult, ErrorData, ListRootsResult, Root

from tests.agent_mcp.conftest import ScriptWriter, bash, create_file, data, say, text


def sidehand_mcp(script_path: Path) -> list[str]:
    return [sys.executable, "-m", "tests.support.fake_server", "mcp", "--script", str(script_path)]


TOOLS = {
    "start_task",
    "get_task",
    "cancel_task",
    "list_tasks",
    "run_task",
    "answer_approval",
    "apply_changes",
    "discard_changes",
    "list_checkpoints",
    "restore_checkpoint",
    "sandbox_open",
    "sandbox_run",
    "sandbox_read",
    "sandbox_write",
    "sandbox_edit",
    "sandbox_search",
    "sandbox_diff",
    "sandbox_close",
}


def server_env(tmp_path: Path, workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env.update(
        SIDEHAND_SESSIONS_DIR=str(tmp_path / "sessions"),
        SIDEHAND_MCP_ROOTS=str(workspace),
        SIDEHAND_CONFIG=str(tmp_path / "no-config.toml"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


async def exercise(client: Client, workspace: Path) -> None:
    """The same short scenario over any transport: list, run a task, apply its changes."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert names == TOOLS
    report = data(await client.call_tool("run_task", {"task": "write out.txt", "approval": "never"}))
    assert report["info"]["message"] == "Done."
    applied = data(await client.call_tool("apply_changes", {"id": report["info"]["task_id"]}))
    assert applied["written"] == ["out.txt"]
    assert (workspace / "out.txt").read_text() == "out\n"
    bad = await client.call_tool("get_task", {"task_id": "nope"})
    assert bad.is_error and "unknown task" in text(bad)


async def test_stdio(tmp_path: Path, workspace: Path, script: ScriptWriter) -> None:
    path = script([create_file("/workspace/out.txt", "out\n"), say("Done.")])
    command = sidehand_mcp(path)
    params = StdioServerParameters(
        command=command[0], args=command[1:], env=server_env(tmp_path, workspace), cwd=str(tmp_path)
    )
    with anyio.fail_after(30):
        async with Client(params, read_timeout_seconds=20) as client:
            assert client.server_info is not None and client.server_info.name == "sidehand"
            await exercise(client, workspace)


@asynccontextmanager
async def http_server(
    tmp_path: Path, script_path: Path, env: dict[str, str], *args: str
) -> AsyncIterator[tuple[str, str]]:
    """Start `sidehand mcp --http` (on the fakes); yields (url, token) once it listens. On leaving,
    SIGTERM stops it, quietly."""
    token_file = tmp_path / "token"
    proc = await asyncio.create_subprocess_exec(
        *sidehand_mcp(script_path), "--http", "--port", "0", "--token-file", str(token_file), *args,
        env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        url = None
        with anyio.fail_after(20):
            while url is None:
                line = (await proc.stderr.readline()).decode()
                assert line, "the server exited before listening"
                if m := re.search(r"listening on (http://\S+)", line):
                    url = m[1]
        drain = asyncio.create_task(proc.stderr.read())
        token = token_file.read_text().strip() if token_file.exists() else ""
        yield url, token
    finally:
        if proc.returncode is None:
            proc.terminate()  # SIGTERM: a graceful stop, no traceback
            with anyio.fail_after(15):
                await proc.wait()
    rest = (await drain).decode() if drain is not None else ""
    assert "Traceback" not in rest and "CancelledError" not in rest, rest
    assert proc.returncode == 0


async def test_http_with_bearer_token(tmp_path: Path, workspace: Path, script: ScriptWriter) -> None:
    path = script([create_file("/workspace/out.txt", "out\n"), say("Done.")])
    async with http_server(tmp_path, path, server_env(tmp_path, workspace)) as (url, token):
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        mode = stat.S_IMODE((tmp_path / "token").stat().st_mode)
        assert mode == 0o600 and len(token) >= 32

        async with httpx.AsyncClient() as raw:
            initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            missing = await raw.post(url, json=initialize)
            assert missing.status_code == 401 and "missing bearer token" in missing.text
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = await raw.post(url, json=initialize, headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 401 and "wrong bearer token" in wrong.text
            rebinding = await raw.post(
                url, json=initialize, headers={"Authorization": f"Bearer {token}", "Host": "evil.example:80"}
            )
            assert rebinding.status_code in (403, 421)

        headers = {"Authorization": f"Bearer {token}"}
        with anyio.fail_after(30):
            async with (
                create_mcp_http_client(headers=headers) as http,
                Client(streamable_http_client(url, http_client=http), read_timeout_seconds=20) as client,
            ):
                await exercise(client, workspace)


async def test_http_refuses_to_leave_loopback_without_a_token(tmp_path: Path, workspace: Path) -> None:
    env = server_env(tmp_path, workspace)
    proc = await asyncio.create_subprocess_exec(
        *sidehand_mcp(tmp_path / "none.json"), "--http", "--host", "0.0.0.0", env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    with anyio.fail_after(20):
        out, err = await proc.communicate()
    assert proc.returncode == 2
    assert out == b""
    assert b"refusing to listen on 0.0.0.0 without a token" in err


async def test_http_uses_the_token_it_is_given(tmp_path: Path, workspace: Path, script: ScriptWriter) -> None:
    path = script([])
    env = server_env(tmp_path, workspace)
    env["SIDEHAND_MCP_TOKEN"] = "s3cret-token"
    async with http_server(tmp_path, path, env) as (url, written):
        assert written == ""  # nothing generated, nothing written
        async with httpx.AsyncClient() as raw:
            body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            assert (
                await raw.post(url, json=body, headers={"Authorization": "Bearer other"})
            ).status_code == 401
            ok = await raw.post(url, json=body, headers={"Authorization": "Bearer s3cret-token"})
            assert ok.status_code != 401


async def test_http_token_is_kept_across_restarts_and_rotated_on_demand(
    tmp_path: Path, workspace: Path, script: ScriptWriter
) -> None:
    path = script([])
    env = server_env(tmp_path, workspace)
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    async with http_server(tmp_path, path, env) as (url, first), httpx.AsyncClient() as raw:
        for scheme in ("bearer", "BEARER", "Bearer"):  # RFC 7235: the scheme is case-insensitive
            answer = await raw.post(url, json=body, headers={"Authorization": f"{scheme}  {first}"})
            assert answer.status_code != 401
        assert (await raw.post(url, json=body, headers={"Authorization": first})).status_code == 401
    async with http_server(tmp_path, path, env) as (_, second):
        assert second == first  # a client's configuration survives the restart
    async with http_server(tmp_path, path, env, "--rotate-token") as (_, third):
        assert third != first and len(third) >= 32
    (tmp_path / "token").chmod(0o644)
    proc = await asyncio.create_subprocess_exec(
        *sidehand_mcp(path), "--http", "--port", "0", "--token-file", str(tmp_path / "token"), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    with anyio.fail_after(20):
        _, err = await proc.communicate()
    assert proc.returncode == 2 and b"can be read by other users" in err and b"Traceback" not in err


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_approvals_and_roots_on_both_protocols(
    tmp_path: Path, workspace: Path, script: ScriptWriter, mode: str
) -> None:
    """The official client's current protocol (2026-07-28) and the older one, over a real pipe:
    the approval reaches the client, and the client's root (not the server's cwd) is the workspace."""
    path = script([bash("rm -rf build"), create_file("/workspace/out.txt", "out\n"), say("Done.")])
    env = server_env(tmp_path, workspace)
    del env["SIDEHAND_MCP_ROOTS"]
    command = sidehand_mcp(path)
    params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(tmp_path))
    asked: list[str] = []

    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"decision": "allow_once"})

    async def roots(context: ClientRequestContext) -> ListRootsResult | ErrorData:
        return ListRootsResult(roots=[Root(uri=workspace.as_uri())])

    with anyio.fail_after(40):
        async with Client(
            params, mode=mode, elicitation_callback=elicit, list_roots_callback=roots, read_timeout_seconds=20
        ) as client:
            assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
            report = data(await client.call_tool("run_task", {"task": "clean", "approval": "risky"}))
    assert len(asked) == 1 and "rm -rf build" in asked[0]
    assert report["info"]["workspace"] == str(workspace) and report["info"]["message"] == "Done."
