"""The agent's tools from MCP servers the user configured (sidehand/mcp_config.py,
sidehand/mcp_client.py), against a real MCP server started by the test (the SDK's own MCPServer,
tests/support/mcp_tool_server.py) over stdio and streamable HTTP, in sessions whose model is the
scripted server through litellm."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Settings
from core.events import ApprovalRequested, Event, Notice, ToolResultEvent
from core.session import ApprovalDecision, Session
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from sidehand.mcp_client import McpTools, tool_name
from sidehand.mcp_config import load_servers, parse_config
from sidehand.mcp_tools import McpToolsFactory
from tests.core.conftest import Agent, make_agent

ROOT = Path(__file__).resolve().parents[2]


def stdio_entry(*args: str, **env: str) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.support.mcp_tool_server", *args],
        "env": {"PYTHONPATH": str(ROOT), **env},
    }


def write_config(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(Script()) as srv:
        yield srv


def start_http_server(*args: str) -> Iterator[str]:
    """The test server over HTTP, requiring `Authorization: Bearer s3cret`; its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.mcp_tool_server",
            *args,
            "--require-header",
            "Authorization=Bearer s3cret",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    try:
        assert line and line[0].startswith("http://127.0.0.1:"), "the test MCP server did not start"
        yield line[0].strip()
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


@pytest.fixture
def http_tools() -> Iterator[str]:
    yield from start_http_server("--http")


@pytest.fixture
def sse_tools() -> Iterator[str]:
    yield from start_http_server("--sse")


def agent_with(
    tmp_path: Path, server: ScriptedLLMServer, turns: list[Turn], config: Path, **settings: Any
) -> Agent:
    return make_agent(
        tmp_path,
        server,
        turns,
        external_tools=McpToolsFactory(startup_timeout=30),
        mcp_config=config,
        **settings,
    )


def approve_all(session: Session) -> list[ApprovalRequested]:
    asked: list[ApprovalRequested] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ApprovalRequested):
            asked.append(event)
            asyncio.get_running_loop().call_soon(session.decide, event.call_id, ApprovalDecision(allow=True))

    session.subscribe(on_event)
    return asked


async def test_a_stdio_servers_tools_are_agent_tools(
    tmp_path: Path, server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_VALUE", "from-the-environment")
    config = write_config(tmp_path / "mcp.json", {"tools": stdio_entry(PROBE="${PROBE_VALUE}")})
    turns = [Turn.call("mcp__tools__add", {"a": 2, "b": 3}), Turn.call("mcp__tools__where"), Turn.say("5")]
    agent = agent_with(tmp_path, server, turns, config)
    ws = tmp_path / "ws"
    ws.mkdir()
    session = await agent.manager.create(ws)
    asked = approve_all(session)
    end = await session.prompt("add 2 and 3")
    assert end.stop_reason == "end_turn"
    tools = {t["function"]["name"]: t["function"] for t in agent.bodies()[0]["tools"]}
    assert {"mcp__tools__add", "mcp__tools__echo", "mcp__tools__fail", "mcp__tools__where"} <= set(tools)
    assert tools["mcp__tools__add"]["parameters"]["required"] == ["a", "b"]
    assert "(from the MCP server tools)" in tools["mcp__tools__add"]["description"]
    assert agent.bodies()[1]["messages"][-1] == {"role": "tool", "content": "5", "tool_call_id": "call_1_0"}
    assert agent.bodies()[2]["messages"][-1]["content"] == f"{ws} PROBE=from-the-environment"
    # they went through the approval policy (default: ask), as high-risk actions
    assert [(a.tool, a.risk) for a in asked] == [("mcp__tools__add", "high"), ("mcp__tools__where", "high")]
    results = [e for e in session.store.events(session.id) if isinstance(e, ToolResultEvent)]
    assert [r.output for r in results][:1] == ["5"]
    await agent.manager.aclose()


async def test_a_rejected_call_does_not_reach_the_server_and_errors_come_back(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    config = write_config(tmp_path / "mcp.json", {"tools": stdio_entry()})
    turns = [
        Turn.call("mcp__tools__echo", {"text": "rejected"}),
        Turn.call("mcp__tools__fail", {"message": "the disk is full"}),
        Turn.call("mcp__tools__add", {"a": "x"}),
        Turn.say("ok"),
    ]
    agent = agent_with(tmp_path, server, turns, config)
    session = await agent.manager.create(tmp_path)
    answers = iter([False, True, True])

    def on_event(event: Event) -> None:
        if isinstance(event, ApprovalRequested):
            decision = ApprovalDecision(allow=next(answers))
            asyncio.get_running_loop().call_soon(session.decide, event.call_id, decision)

    session.subscribe(on_event)
    await session.prompt("go")
    outputs = [e for e in session.store.events(session.id) if isinstance(e, ToolResultEvent)]
    assert outputs[0].error and "rejected this action" in outputs[0].output
    assert outputs[1].error and "the disk is full" in outputs[1].output
    assert outputs[2].error and "validation error" in outputs[2].output.lower()
    await agent.manager.aclose()


async def test_a_streamable_http_server_with_a_header_from_the_environment(
    tmp_path: Path, server: ScriptedLLMServer, http_tools: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCS_TOKEN", "s3cret")
    config = write_config(
        tmp_path / "mcp.json",
        {
            "docs": {"type": "http", "url": http_tools, "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}},
            "nokey": {"type": "http", "url": http_tools},
        },
    )
    agent = agent_with(
        tmp_path,
        server,
        [Turn.call("mcp__docs__echo", {"text": "over http"}), Turn.say("ok")],
        config,
        approval_mode="never",
    )
    session = await agent.manager.create(tmp_path)
    await session.prompt("echo")
    assert agent.bodies()[1]["messages"][-1]["content"] == "over http"
    [notice] = [e for e in session.store.events(session.id) if isinstance(e, Notice)]
    assert notice.level == "error" and "the MCP server nokey did not start" in notice.message
    assert "s3cret" not in session.store.log_path(session.id).read_text()
    await agent.manager.aclose()


async def test_an_sse_server(tmp_path: Path, server: ScriptedLLMServer, sse_tools: str) -> None:
    entry = {"type": "sse", "url": sse_tools, "headers": {"Authorization": "Bearer s3cret"}}
    config = write_config(tmp_path / "mcp.json", {"old": entry})
    turns = [Turn.call("mcp__old__add", {"a": 40, "b": 2}), Turn.say("ok")]
    agent = agent_with(tmp_path, server, turns, config, approval_mode="never")
    session = await agent.manager.create(tmp_path)
    await session.prompt("add")
    assert agent.bodies()[1]["messages"][-1]["content"] == "42"
    await agent.manager.aclose()


async def test_a_server_that_fails_to_start_is_reported_and_skipped(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    config = write_config(
        tmp_path / "mcp.json",
        {
            "broken": stdio_entry("--crash"),
            "missing": {"command": str(tmp_path / "no-such-program")},
            "tools": stdio_entry(),
        },
    )
    agent = agent_with(
        tmp_path,
        server,
        [Turn.call("mcp__tools__echo", {"text": "still here"}), Turn.say("ok")],
        config,
        approval_mode="never",
    )
    session = await agent.manager.create(tmp_path)
    end = await session.prompt("go")
    assert end.stop_reason == "end_turn"
    assert agent.bodies()[1]["messages"][-1]["content"] == "still here"
    notices = sorted(e.message for e in session.store.events(session.id) if isinstance(e, Notice))
    assert len(notices) == 2
    assert (
        "the MCP server broken did not start" in notices[0]
        and "cannot open the database (by design)" in notices[0]
    )
    assert "the MCP server missing did not start" in notices[1]
    names = {t["function"]["name"] for t in agent.bodies()[0]["tools"]}
    assert not any(n.startswith(("mcp__broken", "mcp__missing")) for n in names)
    await agent.manager.aclose()


async def test_the_server_stops_with_the_session(tmp_path: Path, server: ScriptedLLMServer) -> None:
    pid_file = tmp_path / "server.pid"
    config = write_config(tmp_path / "mcp.json", {"tools": stdio_entry("--pid-file", str(pid_file))})
    agent = agent_with(tmp_path, server, [Turn.say("hi")], config)
    session = await agent.manager.create(tmp_path)
    await session.prompt("hello")
    pid = int(pid_file.read_text())
    os.kill(pid, 0)  # running while the session is open
    await agent.manager.aclose()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_workspace_config_runs_only_when_trusted(tmp_path: Path, server: ScriptedLLMServer) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    write_config(ws / ".mcp.json", {"repo-tools": stdio_entry()})
    agent = agent_with(tmp_path, server, [Turn.say("ok")], tmp_path / "none.json")
    session = await agent.manager.create(ws)
    await session.prompt("go")
    [notice] = [e for e in session.store.events(session.id) if isinstance(e, Notice)]
    assert "names MCP servers (repo-tools) that were not started" in notice.message
    assert not any(t["function"]["name"].startswith("mcp__") for t in agent.bodies()[0]["tools"])
    await agent.manager.aclose()

    trusted = agent_with(tmp_path, server, [Turn.say("ok")], tmp_path / "none.json", trust_workspace_mcp=True)
    session = await trusted.manager.create(ws)
    await session.prompt("go")
    assert "mcp__repo-tools__echo" in {t["function"]["name"] for t in trusted.bodies()[-1]["tools"]}
    await trusted.manager.aclose()


def test_config_files_in_the_shapes_other_agents_use(tmp_path: Path) -> None:
    env = {"HOME_TOKEN": "t"}
    servers, problems = parse_config(
        json.dumps(
            {
                "mcpServers": {
                    "a": {"command": "npx", "args": ["-y", "srv", "${HOME_TOKEN}"], "alwaysAllow": ["x"]},
                    "b": {"url": "http://127.0.0.1:1/mcp"},
                    "c": {"type": "sse", "url": "http://127.0.0.1:1/sse"},
                    "off": {"command": "x", "disabled": True},
                    "bad": {"type": "stdio"},
                    "unset": {"command": "x", "env": {"K": "${NOT_SET}"}},
                    "default": {"command": "x", "env": {"K": "${NOT_SET:-fallback}"}},
                    "list": ["not", "an", "object"],
                }
            }
        ),
        "mcp.json",
        env,
    )
    assert set(servers) == {"a", "b", "c", "default"}
    assert servers["a"].args == ["-y", "srv", "t"] and servers["a"].transport == "stdio"
    assert servers["b"].transport == "http" and servers["c"].transport == "sse"
    assert servers["default"].env == {"K": "fallback"}
    assert len(problems) == 3
    assert any("'bad'" in p and "needs a `command`" in p for p in problems)
    assert any("'unset'" in p and "NOT_SET is not set" in p for p in problems)
    vscode, _ = parse_config('{"servers": {"v": {"type": "http", "url": "http://x/mcp"}}}', "x", {})
    assert set(vscode) == {"v"}
    assert parse_config("{not json", "f.json", {})[1][0].startswith("MCP config f.json is not valid JSON")
    assert "no `mcpServers` object" in parse_config("[]", "f.json", {})[1][0]


def test_a_symlinked_workspace_config_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    write_config(tmp_path / "elsewhere.json", {"x": {"command": "evil"}})
    (ws / ".mcp.json").symlink_to(tmp_path / "elsewhere.json")
    settings = Settings(mcp_config=None, trust_workspace_mcp=True)
    servers, problems = load_servers(ws, settings, {})
    assert servers == {} and "symlink" in problems[0]


def test_tool_names_are_safe_and_unique() -> None:
    assert tool_name("files", "read_file", set()) == "mcp__files__read_file"
    assert tool_name("my server", "do.it/now", set()) == "mcp__my_server__do_it_now"
    long = tool_name("s" * 40, "t" * 40, set())
    assert len(long) == 64 and long.startswith("mcp__sss")
    assert tool_name("a b", "x", {"mcp__a_b__x"}) != "mcp__a_b__x"


def test_the_documented_config_parses() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    block = doc.split("## MCP servers", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    servers, problems = parse_config(block, "docs", {"GITHUB_TOKEN": "g", "DOCS_TOKEN": "d"})
    assert problems == []
    assert servers["github"].env == {"GITHUB_PERSONAL_ACCESS_TOKEN": "g"}
    assert servers["docs"].transport == "http" and servers["docs"].headers == {"Authorization": "Bearer d"}


async def test_tools_that_cannot_load_are_a_notice_and_the_turn_goes_on(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    class Broken:
        async def __call__(self, workspace: Path, settings: Settings) -> McpTools:
            raise RuntimeError("the config exploded")

    agent = make_agent(tmp_path, server, [Turn.say("fine")], external_tools=Broken())
    session = await agent.manager.create(tmp_path)
    end = await session.prompt("go")
    assert end.stop_reason == "end_turn" and end.message == "fine"
    [notice] = [e for e in session.store.events(session.id) if isinstance(e, Notice)]
    assert notice.message == "the MCP servers' tools could not be loaded: the config exploded"
    await agent.manager.aclose()


async def test_a_server_that_never_answers_is_given_up_on_time(
    tmp_path: Path, server: ScriptedLLMServer
) -> None:
    silent = {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"]}
    config = write_config(tmp_path / "mcp.json", {"silent": silent, "tools": stdio_entry()})
    agent = make_agent(
        tmp_path,
        server,
        [Turn.call("mcp__tools__echo", {"text": "on time"}), Turn.say("ok")],
        external_tools=McpToolsFactory(startup_timeout=2),
        mcp_config=config,
        approval_mode="never",
    )
    session = await agent.manager.create(tmp_path)
    with anyio.fail_after(15):  # 2 s to give up, not the 10 s a connected server gets to close
        await session.prompt("go")
    assert agent.bodies()[1]["messages"][-1]["content"] == "on time"
    [notice] = [e for e in session.store.events(session.id) if isinstance(e, Notice)]
    assert notice.message.startswith("the MCP server silent did not start: it did not answer within 2 s")
    await agent.manager.aclose()
