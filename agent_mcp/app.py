"""What the MCP tools share: the session manager, the task and sandbox registries, the allowed
workspace roots, and the conversion of our errors and results into MCP tool results."""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from agent_mcp.asking import can_list_roots, client_root_uris
from agent_mcp.progress_log import LogLevel
from agent_mcp.sandboxes import SandboxRegistry
from agent_mcp.tasks import TaskRegistry
from agent_mcp.workspaces import normalize_roots, resolve_workspace, root_from_uri
from core.errors import SidehandError
from core.session import Session
from core.sessions import SessionManager

log = logging.getLogger(__name__)
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ServerConfig:
    roots: tuple[Path, ...] = ()  # empty: the client's roots, else the working folder
    max_tasks: int = 8
    max_sandboxes: int = 8
    approval_timeout: float = 300.0


@dataclass
class SidehandApp:
    manager: SessionManager
    config: ServerConfig = field(default_factory=ServerConfig)
    client_roots: list[Path] = field(default_factory=list)  # the last roots a client sent us

    def __post_init__(self) -> None:
        self.tasks = TaskRegistry(
            self.manager, max_running=self.config.max_tasks, approval_timeout=self.config.approval_timeout
        )
        self.sandboxes = SandboxRegistry(self.manager, max_open=self.config.max_sandboxes)
        self.log_level = LogLevel()  # for the `logging` capability (agent_mcp.progress_log)
        self.configured_roots = normalize_roots(self.config.roots)

    def known_roots(self) -> list[Path]:
        """Allowed roots without asking the client: configured, else last seen, else cwd."""
        return self.configured_roots or self.client_roots or normalize_roots([Path.cwd()])

    async def roots(self, ctx: Context[Any, Any] | None) -> list[Path]:
        """Allowed roots for this request: configured ones win; else ask the client (if it can:
        over the back channel, or, from protocol 2026-07-28 on, by returning the question, which
        raises `InputNeeded`)."""
        if self.configured_roots or ctx is None or not can_list_roots(ctx):
            return self.known_roots()
        try:
            uris = await client_root_uris(ctx)
        except (MCPError, OSError, RuntimeError) as exc:
            log.info("the client did not list its roots: %s", exc)
            return self.known_roots()
        paths = [p for uri in uris or () if (p := root_from_uri(uri)) is not None]
        if roots := normalize_roots(paths):
            self.client_roots = roots
        return self.known_roots()

    async def workspace(self, workspace: str | None, ctx: Context[Any, Any] | None) -> Path:
        return resolve_workspace(workspace, await self.roots(ctx))

    def session(self, id: str) -> Session:
        """The session of a task or an open sandbox."""
        if (box := self.sandboxes.open.get(id)) is not None:
            return box.session
        return self.tasks.get(id).session

    async def aclose(self) -> None:
        await self.tasks.aclose()
        await self.sandboxes.aclose()
        await self.manager.aclose()


async def client_log(
    ctx: Context[Any, Any], level: Literal["info", "warning", "error"], message: str
) -> None:
    """A log message to the client (MCP `notifications/message`), for what its user should know."""
    try:
        with warnings.catch_warnings():  # deprecated in 2026-07-28; today's clients still show them
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await ctx.log(level, message, logger_name="sidehand")
    except (MCPError, OSError, RuntimeError) as exc:
        log.info("could not send a log message to the client: %s", exc)


def result(model: BaseModel) -> CallToolResult:
    """A tool result with the model as structured content and its readable form as text."""
    text = model.text() if hasattr(model, "text") else model.model_dump_json(indent=2)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json")
    )


def tool(server: MCPServer[Any], **options: Any) -> Callable[[_F], _F]:
    """`server.tool`, with the docstring's indentation cleaned for the tool's description."""

    def register(fn: _F) -> _F:
        server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), **options)
        return fn

    return register


@contextlib.contextmanager
def tool_errors() -> Iterator[None]:
    """Our errors become tool errors (is_error results with the message): the server keeps serving."""
    try:
        yield
    except SidehandError as exc:
        raise ToolError(str(exc)) from exc
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        raise ToolError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc
