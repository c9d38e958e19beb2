"""The agent's tools from the MCP servers the user configured (sidehand/mcp_config.py), through the
official `mcp` SDK's client: the core's `ExternalTools` seam (the core imports no `mcp`).

Each session connects to its servers when its first turn starts (stdio servers are started then,
in the workspace folder, with the SDK's minimal environment plus the entry's `env`) and closes the
connections with the session. A server that does not start within `STARTUP_TIMEOUT`, or fails, is
left out and reported (with the end of its stderr). A tool is offered as
`mcp__<server>__<tool>` (cut to 64 characters, the OpenAI limit, with a hash when cut), so it
cannot clash with a built-in tool; its calls go through the approval policy like any action."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import mcp_types as types
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from core.messages import ToolSpec
from core.protocols import ExternalResult
from core.tools.external import EXTERNAL_PREFIX
from core.version import VERSION
from sidehand.mcp_config import ServerConfig

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0
MAX_NAME = 64
STDERR_TAIL = 600
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def tool_name(server: str, tool: str, taken: set[str]) -> str:
    """`mcp__server__tool`, safe for every provider and not in `taken`."""
    name = f"{EXTERNAL_PREFIX}{_BAD_NAME_CHARS.sub('_', server)}__{_BAD_NAME_CHARS.sub('_', tool)}"
    if len(name) > MAX_NAME or name in taken:
        digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}_{digest}"
    return name


def result_text(result: types.CallToolResult) -> str:
    """A tool result as text for the model: text parts as they are, other parts named."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]")
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            text = resource.text if isinstance(resource, types.TextResourceContents) else "[binary content]"
            parts.append(f"[resource {resource.uri}]\n{text}")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, indent=1))
    return "\n".join(parts) if parts else "(no output)"


class ServerStartError(Exception):
    """Why a server did not start (with the end of its stderr)."""


class ServerConnection:
    """One server's client, held open by its own task: the SDK's transports must be entered and
    left in the same task, and a session's turns run in others."""

    def __init__(self, name: str, config: ServerConfig, workspace: Path) -> None:
        self.name = name
        self.config = config
        self.workspace = workspace
        self.client: Client | None = None
        self._stderr: IO[str] | None = None
        self._ready: asyncio.Future[list[types.Tool]] | None = None
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self, timeout: float) -> list[types.Tool]:
        self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(), name=f"mcp-server-{self.name}")
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            tail = self._stderr_tail()
            await self.close()
            raise ServerStartError(f"it did not answer within {timeout:g} s{tail}") from None
        except BaseException:
            await self.close()
            raise

    async def _hold(self) -> None:
        assert self._ready is not None
        try:
            info = types.Implementation(name="sidehand", version=VERSION)
            async with Client(self._transport(), client_info=info) as client:
                tools = await _all_tools(client)
                self.client = client
                self._ready.set_result(tools)
                await self._closing.wait()
        except Exception as exc:
            if not self._ready.done():
                self._ready.set_exception(ServerStartError(f"{_reason(exc)}{self._stderr_tail()}"))
            else:
                log.warning("MCP server %s: the connection ended: %s", self.name, _reason(exc))
        finally:
            self.client = None
            if not self._ready.done():
                self._ready.cancel()
            if self._stderr is not None:
                self._stderr.close()

    def _transport(self) -> Any:
        config = self.config
        if config.transport == "stdio":
            assert config.command is not None
            # The server's stderr, kept for the report when it fails to start (not our stderr: a
            # server's log lines would mix into `sidehand run`'s progress and the servers' logs).
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed in _hold)
            params = StdioServerParameters(
                command=config.command,
                args=config.args,
                env=config.env or None,
                cwd=config.cwd or str(self.workspace),
            )
            return stdio_client(params, errlog=self._stderr)
        assert config.url is not None
        if config.transport == "sse":
            return sse_client(config.url, headers=config.headers or None)
        http = create_mcp_http_client(headers=config.headers or None)
        return _closing_with(streamable_http_client(config.url, http_client=http), http)

    def _stderr_tail(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read()
        except (OSError, ValueError):
            return ""
        text = " ".join(text.split())
        return f" (its stderr: …{text[-STDERR_TAIL:]})" if text else ""

    async def call(self, tool: str, arguments: dict[str, Any], timeout: float) -> types.CallToolResult:
        if self.client is None:
            raise ConnectionError(f"the MCP server {self.name} is not connected")
        return await asyncio.wait_for(self.client.call_tool(tool, arguments), timeout)

    async def close(self) -> None:
        """End the connection (a stdio server is stopped). One still connecting is cancelled at once."""
        self._closing.set()
        task, self._task = self._task, None
        if task is None:
            return
        connected = self._ready is not None and self._ready.done() and not self._ready.cancelled()
        done: set[asyncio.Task[None]] = set()
        if connected:
            done, _ = await asyncio.wait([task], timeout=CLOSE_TIMEOUT)
        if not done:
            task.cancel()
            await asyncio.wait([task], timeout=CLOSE_TIMEOUT)


@contextlib.asynccontextmanager
async def _closing_with(transport: Any, http: Any) -> Any:
    """The streamable HTTP transport, and the HTTP client it was given closed after it."""
    async with http, transport as streams:
        yield streams


async def _all_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever cannot hang the start
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


class McpTools:
    """A session's MCP tools (the core's ExternalTools)."""

    def __init__(self) -> None:
        self.connections: list[ServerConnection] = []
        self._specs: list[ToolSpec] = []
        self._problems: list[str] = []
        self._routes: dict[str, tuple[ServerConnection, str]] = {}

    @property
    def specs(self) -> Sequence[ToolSpec]:
        return self._specs

    @property
    def problems(self) -> Sequence[str]:
        return self._problems

    def add(self, connection: ServerConnection, tools: list[types.Tool]) -> None:
        self.connections.append(connection)
        for tool in tools:
            name = tool_name(connection.name, tool.name, set(self._routes))
            schema = dict(tool.input_schema) if isinstance(tool.input_schema, dict) else {}
            schema.setdefault("type", "object")
            schema.setdefault("properties", {})
            description = f"{tool.description or tool.name} (from the MCP server {connection.name})"
            self._specs.append(ToolSpec(name=name, description=description[:1024], parameters=schema))
            self._routes[name] = (connection, tool.name)

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> ExternalResult:
        connection, tool = self._routes[name]
        try:
            result = await connection.call(tool, arguments, timeout)
        except TimeoutError:
            return ExternalResult(
                f"The MCP server {connection.name} did not answer within {timeout:g} s.", True
            )
        except MCPError as exc:
            return ExternalResult(f"The MCP server {connection.name} refused the call: {exc}", True)
        except Exception as exc:  # the server died, the connection broke: the agent carries on
            log.warning("MCP server %s: calling %s failed", connection.name, tool, exc_info=True)
            return ExternalResult(f"Calling {tool} on the MCP server {connection.name} failed: {exc}", True)
        return ExternalResult(result_text(result), bool(result.is_error))

    async def aclose(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)


async def open_servers(
    workspace: Path, servers: dict[str, ServerConfig], problems: list[str], startup_timeout: float
) -> McpTools:
    """The tools of `servers`, connected all at once (each within `startup_timeout`); a server that
    does not start is added to the problems."""
    tools = McpTools()
    tools._problems += problems
    connections = [ServerConnection(name, config, workspace) for name, config in servers.items()]
    opened = await asyncio.gather(*(c.open(startup_timeout) for c in connections), return_exceptions=True)
    for connection, outcome in zip(connections, opened, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            await tools.aclose()
            raise outcome
        if isinstance(outcome, BaseException):
            tools._problems.append(f"the MCP server {connection.name} did not start: {_reason(outcome)}")
        else:
            tools.add(connection, outcome)
    return tools


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):  # anyio task groups wrap the cause
        return "; ".join(_reason(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if isinstance(exc, OSError) else text
