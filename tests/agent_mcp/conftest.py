"""In-memory fixtures: the MCP server wired to the scripted LLM and in-memory sandboxes, and the
SDK's in-process client (the modern protocol by default; `legacy_client` for server-to-client
requests such as elicitation and roots)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from agent_mcp.app import ServerConfig, SidehandApp
from agent_mcp.server import SidehandMCP, build_server
from core.config import Settings
from core.testing.fake_manager import build_fake_manager

ScriptWriter = Callable[..., Path]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text('def greet():\n    return "hello"\n')
    (ws / "README.md").write_text("# Demo\n")
    return ws


@pytest.fixture
def script(tmp_path: Path) -> ScriptWriter:
    """Write the scripted LLM's turns (the scripted server's JSON format); returns the path."""
    path = tmp_path / "script.json"
    path.write_text("[]")

    def write(turns: list[dict[str, Any]] | dict[str, Any]) -> Path:
        path.write_text(json.dumps(turns))
        return path

    return write


@pytest.fixture
async def app(tmp_path: Path, workspace: Path, script: ScriptWriter) -> AsyncIterator[SidehandApp]:
    settings = Settings(sessions_dir=tmp_path / "sessions", approval_mode="never")
    sidehand = SidehandApp(
        build_fake_manager(settings, script([])),
        ServerConfig(roots=(workspace,), approval_timeout=5.0),
    )
    yield sidehand
    await sidehand.aclose()


@pytest.fixture
def server(app: SidehandApp) -> SidehandMCP:
    return build_server(app)


@contextlib.asynccontextmanager
async def hosted(client: Client) -> AsyncIterator[Client]:
    """Enter and leave the client in one task of its own: pytest-asyncio runs a fixture's setup
    and teardown in different tasks, which anyio's cancel scopes do not allow."""
    ready, stop = asyncio.Event(), asyncio.Event()

    async def host() -> None:
        async with client:
            ready.set()
            await stop.wait()

    task = asyncio.create_task(host())
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait([task, waiter], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        waiter.cancel()
        await task  # raises what went wrong while connecting
    try:
        yield client
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def client(server: SidehandMCP) -> AsyncIterator[Client]:
    async with hosted(Client(server, read_timeout_seconds=20)) as c:
        yield c


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    assert isinstance(result.structured_content, dict)
    return dict(result.structured_content)


def create_file(path: str, content: str, **turn: Any) -> dict[str, Any]:
    """A scripted turn: the agent creates a file with the editor."""
    return {
        "tool_calls": [
            {"name": "editor", "arguments": {"command": "create", "path": path, "file_text": content}}
        ],
        **turn,
    }


def bash(command: str, **turn: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": "bash", "arguments": {"command": command}}], **turn}


def say(text_: str, **turn: Any) -> dict[str, Any]:
    return {"text": text_, **turn}
