"""The Sidehand MCP server (official `mcp` SDK 2.x, `MCPServer`): task tools, sandbox tools,
session resources, and the workspace's skills as prompts. Transports live in agent_mcp.cli."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    GetPromptResult,
    InputRequiredResult,
    ListPromptsResult,
    PaginatedRequestParams,
    PromptMessage,
    PromptReference,
    ResourceTemplateReference,
    TextContent,
)
from mcp_types import Prompt as MCPPrompt
from mcp_types import PromptArgument as MCPPromptArgument

from agent_mcp.app import SidehandApp, client_log
from agent_mcp.resources import SessionNotFound, check_session, events_jsonl, session_diff, transcript
from agent_mcp.sandbox_tools import register_sandbox_tools
from agent_mcp.skills import SkillPrompt, SkillPrompts
from agent_mcp.task_tools import register_task_tools
from agent_mcp.workspaces import WorkspaceError, inside
from core.eventlog import EventLogError
from core.version import VERSION

log = logging.getLogger(__name__)

MAX_COMPLETIONS = 100  # the protocol's limit per answer

INSTRUCTIONS = """\
Sidehand runs a coding agent, or gives you a sandbox, in Docker sandboxes that mirror a workspace.
Nothing reaches the workspace until changes are applied.
- Delegate a task: start_task (returns an id at once) -> get_task with wait (<= 30 s) until it ends ->
  apply_changes or discard_changes. run_task does the same in one blocking call.
- Work yourself in a sandbox: sandbox_open -> sandbox_run / sandbox_read / sandbox_search /
  sandbox_write / sandbox_edit -> sandbox_diff -> apply_changes -> sandbox_close.
Resources: sidehand://sessions/{id}/events, /diff, /transcript (a task id is a session id);
sidehand://skills/{name}. Prompts: the skills found in the workspace (AGENTS.md, .agents/skills)."""


class SidehandMCP(MCPServer[Any]):
    """MCPServer whose prompts are the workspace's skills, read fresh on every listing."""

    def __init__(self, app: SidehandApp) -> None:
        super().__init__(
            "sidehand", title="Sidehand", instructions=INSTRUCTIONS, version=VERSION, log_level="WARNING"
        )
        self.app = app
        self.skills = SkillPrompts()

    async def _handle_list_prompts(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListPromptsResult:
        """The SDK's handler, overridden for the request's context: a skill file that cannot be used
        is reported to the client as a log message."""
        skills, problems = self.skills.discover(self.app.known_roots())
        context: Context[Any, Any] = Context(request_context=ctx, mcp_server=self)
        for problem in problems:
            await client_log(context, "warning", str(problem))
        return ListPromptsResult(prompts=_prompts(skills))

    async def list_prompts(self) -> list[MCPPrompt]:
        return _prompts(self.skills.discover(self.app.known_roots())[0])

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        skills, _ = self.skills.discover(self.app.known_roots())
        skill = skills.get(name)
        if skill is None:
            known = ", ".join(skills) or "none"
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {name!r} (skills found: {known})")
        text = f"Follow this skill ({skill.path}):\n\n{skill.body}"
        if task := (arguments or {}).get("task"):
            text += f"\n\nTask: {task}"
        return GetPromptResult(
            description=skill.description,
            messages=[PromptMessage(role="user", content=TextContent(type="text", text=text))],
        )


def _prompts(skills: dict[str, SkillPrompt]) -> list[MCPPrompt]:
    return [
        MCPPrompt(
            name=skill.name,
            description=skill.description,
            arguments=[
                MCPPromptArgument(name="task", description="What to apply the skill to", required=False)
            ],
        )
        for skill in skills.values()
    ]


def _register_resources(server: SidehandMCP, app: SidehandApp) -> None:
    def checked(session_id: str) -> str:
        try:
            return check_session(app.manager, session_id, app.known_roots())
        except SessionNotFound as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        except WorkspaceError as exc:
            raise ResourceError(str(exc)) from exc

    @server.resource("sidehand://sessions", name="sessions", mime_type="application/json")
    def sessions() -> str:
        """Sessions (tasks) whose workspace is inside the allowed roots, newest first."""
        roots = app.known_roots()
        infos = [
            {"id": i.id, "workspace": i.workspace, "title": i.title, "status": i.status, "live": i.live}
            for i in app.manager.list()
            if inside(Path(i.workspace).resolve(), roots)
        ]
        return json.dumps(infos, indent=1)

    @server.resource(
        "sidehand://sessions/{session_id}/events", name="session-events", mime_type="application/x-ndjson"
    )
    def events(session_id: str) -> str:
        """The session's events as JSON Lines, exactly as logged (secrets redacted)."""
        try:
            return events_jsonl(app.manager.store.events(checked(session_id)))
        except EventLogError as exc:
            raise ResourceError(str(exc)) from exc

    @server.resource("sidehand://sessions/{session_id}/diff", name="session-diff", mime_type="text/x-diff")
    async def diff(session_id: str) -> str:
        """The session's change set as a unified diff (`git apply` it); empty when nothing changed."""
        return await session_diff(app.manager, checked(session_id))

    @server.resource(
        "sidehand://sessions/{session_id}/transcript", name="session-transcript", mime_type="text/markdown"
    )
    def transcript_md(session_id: str) -> str:
        """The conversation as Markdown: prompts, answers, actions and their results."""
        try:
            return transcript(app.manager.store.events(checked(session_id)))
        except EventLogError as exc:
            raise ResourceError(str(exc)) from exc


def _register_skill_resources(server: SidehandMCP, app: SidehandApp) -> None:
    @server.resource("sidehand://skills/{name}", name="skill", mime_type="text/markdown")
    def skill(name: str) -> str:
        """A skill found in the allowed roots (AGENTS.md, .agents/skills), as written."""
        found = server.skills.discover(app.known_roots())[0].get(name)
        if found is None:
            raise ResourceNotFoundError(f"no skill named {name!r} in the allowed roots")
        return found.body


def _register_completions(server: SidehandMCP, app: SidehandApp) -> None:
    """`completion/complete`: session ids for the session resources, skill names for the skill
    resource, and earlier tasks' titles for a skill prompt's `task`."""

    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK's decorator is untyped
    async def complete(
        ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: Any
    ) -> Completion:
        typed = argument.value
        if isinstance(ref, ResourceTemplateReference) and argument.name == "session_id":
            roots = app.known_roots()
            found = [i.id for i in app.manager.list() if inside(Path(i.workspace).resolve(), roots)]
        elif isinstance(ref, ResourceTemplateReference) and argument.name == "name":
            found = sorted(server.skills.discover(app.known_roots())[0])
        elif isinstance(ref, PromptReference) and argument.name == "task":
            roots = app.known_roots()
            titles = (i.title for i in app.manager.list() if inside(Path(i.workspace).resolve(), roots))
            found = list(dict.fromkeys(t for t in titles if t and t != "sandbox"))
        else:
            found = []
        matching = [v for v in found if v.lower().startswith(typed.lower())]
        return Completion(
            values=matching[:MAX_COMPLETIONS], total=len(matching), has_more=len(matching) > MAX_COMPLETIONS
        )


def build_server(app: SidehandApp) -> SidehandMCP:
    server = SidehandMCP(app)
    register_task_tools(server, app)
    register_sandbox_tools(server, app)
    _register_resources(server, app)
    _register_skill_resources(server, app)
    _register_completions(server, app)
    app.log_level.register(server)
    return server
