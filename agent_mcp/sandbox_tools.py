"""The sandbox tools: another agent opens a Docker sandbox mirroring a workspace and gets Sidehand's
persistent shell and editor in it (no Sidehand model involved). Changes stay in the sandbox until
apply_changes writes them to the workspace."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field

from agent_mcp.app import SidehandApp, result, tool, tool_errors
from agent_mcp.asking import InputNeeded
from agent_mcp.models import CommandOutput, DiffResult, EditorOutput, SandboxInfo, SearchResult
from agent_mcp.sandboxes import sandbox_path
from core.tools.editor import EditorParams

SandboxId = Annotated[str, Field(min_length=1, max_length=100, description="The id sandbox_open returned")]
Path_ = Annotated[
    str,
    Field(
        min_length=1, max_length=4096, description="Path in the sandbox; relative ones are under /workspace"
    ),
]


def register_sandbox_tools(server: MCPServer[Any], app: SidehandApp) -> None:
    boxes = app.sandboxes
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @tool(server, title="Open a sandbox")
    async def sandbox_open(
        ctx: Context[Any, Any],
        workspace: Annotated[
            str | None, Field(None, max_length=4096, description="Folder to mirror, inside the allowed roots")
        ] = None,
    ) -> Annotated[CallToolResult, SandboxInfo] | InputRequiredResult:
        """Start an isolated Docker sandbox with a copy of the workspace at /workspace: no network
        by default, resource limits, a persistent shell. Nothing you do there touches the workspace
        until apply_changes. Close it with sandbox_close."""
        with tool_errors():
            try:
                path = await app.workspace(workspace, ctx)
            except InputNeeded as needed:
                return needed.result
            return result(await boxes.create(path))

    @tool(server, title="Run a command in a sandbox")
    async def sandbox_run(
        sandbox_id: SandboxId,
        command: Annotated[str, Field(min_length=1, max_length=100_000, description="A bash command")],
        timeout: Annotated[
            float | None,
            Field(None, gt=0, le=3600, description="Seconds before it is killed (default: server's)"),
        ] = None,
    ) -> Annotated[CallToolResult, CommandOutput]:
        """Run a command in the sandbox's persistent bash shell (cwd and environment persist; a
        command that reads input waits for it: use non-interactive flags). Long output is cut in
        the middle. A command past its timeout is killed (background jobs live on); the shell
        survives."""
        with tool_errors():
            return result(await boxes.run(sandbox_id, command, timeout))

    @tool(server, title="Read a file or folder in a sandbox", annotations=read_only)
    async def sandbox_read(
        sandbox_id: SandboxId,
        path: Path_,
        start_line: Annotated[int | None, Field(None, ge=1, description="First line (1-based)")] = None,
        end_line: Annotated[int | None, Field(None, ge=-1, description="Last line; -1 for the end")] = None,
    ) -> Annotated[CallToolResult, EditorOutput]:
        """A file with `cat -n` line numbers (optionally a line range), or a folder's files two
        levels deep."""
        view_range = None
        if start_line is not None or end_line is not None:
            view_range = [start_line or 1, -1 if end_line is None else end_line]
        with tool_errors():
            params = EditorParams(command="view", path=sandbox_path(path), view_range=view_range)
            return result(await boxes.editor(sandbox_id, params))

    @tool(server, title="Write a file in a sandbox")
    async def sandbox_write(
        sandbox_id: SandboxId,
        path: Path_,
        content: Annotated[str, Field(max_length=2_000_000, description="The whole new content")],
    ) -> Annotated[CallToolResult, EditorOutput]:
        """Create a file, or overwrite it, with `content` (parent folders are created)."""
        with tool_errors():
            return result(await boxes.write(sandbox_id, path, content))

    @tool(server, title="Edit a file in a sandbox")
    async def sandbox_edit(
        sandbox_id: SandboxId,
        path: Path_,
        old_str: Annotated[
            str,
            Field(min_length=1, max_length=1_000_000, description="Exact text to replace; must occur once"),
        ],
        new_str: Annotated[str, Field(max_length=1_000_000, description="The replacement")],
    ) -> Annotated[CallToolResult, EditorOutput]:
        """Replace `old_str`, which must match exactly once (whitespace included), with `new_str`.
        Returns a numbered snippet around the edit and the diff."""
        with tool_errors():
            params = EditorParams(
                command="str_replace", path=sandbox_path(path), old_str=old_str, new_str=new_str
            )
            return result(await boxes.editor(sandbox_id, params))

    @tool(server, title="Search files in a sandbox", annotations=read_only)
    async def sandbox_search(
        sandbox_id: SandboxId,
        pattern: Annotated[
            str, Field(min_length=1, max_length=2000, description="Extended regular expression")
        ],
        path: Annotated[str, Field(max_length=4096, description="Folder or file to search")] = ".",
        glob: Annotated[
            str | None, Field(None, max_length=200, description="Only files matching this, e.g. *.py")
        ] = None,
        ignore_case: bool = False,
        max_results: Annotated[int, Field(100, ge=1, le=2000)] = 100,
    ) -> Annotated[CallToolResult, SearchResult]:
        """grep the sandbox's files (hidden folders such as .git are skipped): path, line, text."""
        with tool_errors():
            return result(await boxes.search(sandbox_id, pattern, path, glob, ignore_case, max_results))

    @tool(server, title="Show a sandbox's changes", annotations=read_only)
    async def sandbox_diff(sandbox_id: SandboxId) -> Annotated[CallToolResult, DiffResult]:
        """What differs between the sandbox's copy and the workspace, as a unified diff."""
        with tool_errors():
            return result(await boxes.diff(sandbox_id))

    @tool(server, title="Close a sandbox", annotations=ToolAnnotations(destructive_hint=True))
    async def sandbox_close(sandbox_id: SandboxId) -> str:
        """Stop and remove the sandbox. Changes not applied are lost."""
        with tool_errors():
            await boxes.close(sandbox_id)
            return f"sandbox {sandbox_id} closed"
