"""The task tools: start_task / get_task / cancel_task / list_tasks (start, poll, cancel: for
clients that time out tool calls), a blocking run_task with progress notifications, approvals,
and apply_changes / discard_changes for a finished task (or an MCP sandbox)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field

from agent_mcp.app import SidehandApp, client_log, result, tool, tool_errors
from agent_mcp.asking import (
    InputNeeded,
    answer_schema,
    approval_message,
    can_elicit,
    decision_from,
    decision_from_result,
    elicit_request,
    input_required,
    is_modern,
    options_for,
    resumed_state,
)
from agent_mcp.models import (
    ApplyMode,
    ApplyResult,
    CheckpointList,
    RestoreResult,
    TaskList,
    TaskReport,
    brief,
    checkpoint_info,
    plan_text,
)
from agent_mcp.progress_log import TaskLogger
from agent_mcp.tasks import McpTask, TaskError, TaskLimits
from core.config import ApprovalMode
from core.events import Event, Notice, PlanUpdated
from core.paths import escape_path
from core.policy import ApprovalDecision

log = logging.getLogger(__name__)

MAX_WAIT = 30.0
HEARTBEAT = 10.0  # run_task reports progress at least this often (clients may reset their timeout)

TaskText = Annotated[str, Field(min_length=1, max_length=100_000, description="What the agent should do")]
Workspace = Annotated[
    str | None,
    Field(
        None,
        max_length=4096,
        description="Project folder on the server's machine, inside the allowed roots (default: the first root)",
    ),
]
Model = Annotated[
    str | None, Field(None, max_length=200, description="litellm model name (default: the server's setting)")
]
Approval = Annotated[
    ApprovalMode,
    Field(
        "risky",
        description="never: run every action; risky: ask for risky commands; always: ask for every "
        "action but reads; read_only: deny all but reads. Asked through elicitation in run_task, else "
        "answered with answer_approval; unanswered questions are rejected after a timeout.",
    ),
]
Apply = Annotated[
    ApplyMode,
    Field(
        "review",
        description="review: keep the change set until apply_changes / discard_changes; "
        "auto: write it to the workspace when the task ends (refused on conflicts)",
    ),
]
TaskId = Annotated[str, Field(min_length=1, max_length=200, description="The id start_task returned")]
MaxCost = Annotated[
    float | None,
    Field(None, gt=0, description="Stop the task (stop reason `budget`) once it has cost this (USD)"),
]
Timeout = Annotated[
    float | None,
    Field(None, gt=0, le=86_400, description="Stop the task (stop reason `timeout`) after this many seconds"),
]


_closing: set[asyncio.Future[None]] = set()  # loggers sending their last messages


def _log_until_done(app: SidehandApp, task: McpTask, ctx: Context[Any, Any]) -> None:
    """A started task's progress as log messages on the client's connection, until it ends."""
    logger = TaskLogger(task.id, ctx.session, app.log_level, None)
    unsubscribe = task.session.subscribe(logger)

    def finished(_: object) -> None:
        unsubscribe()
        closing = asyncio.ensure_future(logger.aclose())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)

    if task.runner is not None:
        task.runner.add_done_callback(finished)


def _needs_client(task: McpTask) -> bool:
    return task.done or bool(task.pending)


def _can_elicit_legacy(ctx: Context[Any, Any]) -> bool:
    return can_elicit(ctx) and not is_modern(ctx)


async def _elicit_approvals(task: McpTask, ctx: Context[Any, Any], asked: set[str]) -> bool:
    """Ask the client about each new pending approval over the back channel (protocols before
    2026-07-28). False when the client cannot be asked."""
    for call_id, request in list(task.pending.items()):
        if call_id in asked:
            continue
        asked.add(call_id)
        try:
            answer = await ctx.elicit(approval_message(task.id, request), answer_schema(request))
        except (MCPError, ValueError, RuntimeError) as exc:
            log.info("task %s: elicitation failed (%s); the approval stays pending", task.id, exc)
            return False
        if call_id not in task.pending:
            continue  # answered meanwhile (answer_approval, timeout)
        content = answer.data.model_dump() if answer.action == "accept" else None
        task.decide(call_id, decision_from(answer.action, content, request))
    return True


def _apply_answers(task: McpTask, ctx: Context[Any, Any], asked: list[str]) -> list[str]:
    """A later round of run_task (2026-07-28): the answers to the approvals the last round asked.
    Returns the approvals decided (one left unanswered is asked again)."""
    answers = ctx.input_responses or {}
    decided = []
    for call_id in asked:
        request = task.pending.get(call_id)
        if request is not None and call_id in answers:
            task.decide(call_id, decision_from_result(answers[call_id], request))
            decided.append(call_id)
    return decided


def _scoped(task: McpTask, call_id: str, allow: bool, scope: str, reason: str) -> ApprovalDecision:
    """answer_approval's decision: the option of this request that has this scope."""
    if not allow:
        return ApprovalDecision(allow=False, reason=reason or "rejected by the MCP client")
    request = task.pending.get(call_id)
    if request is None:
        return ApprovalDecision(allow=True)  # task.decide says what is pending
    wanted = {"once": "allow_once", "session": "allow_session"}.get(scope, "allow_always")
    for option in options_for(request):
        if option.id == wanted and (wanted != "allow_always" or option.decision.scope == scope):
            return option.decision
    offered = ", ".join(o.decision.scope for o in options_for(request) if o.decision.allow)
    raise TaskError(f"scope {scope!r} cannot be granted for this action (it offers: {offered})")


def register_task_tools(server: MCPServer[Any], app: SidehandApp) -> None:
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    async def start(
        task: str,
        workspace: str | None,
        model: str | None,
        approval: ApprovalMode,
        apply: ApplyMode,
        max_cost: float | None,
        timeout: float | None,
        ctx: Context[Any, Any],
    ) -> McpTask | InputRequiredResult:
        """A new task in the workspace (the client may first be asked for its roots)."""
        try:
            path = await app.workspace(workspace, ctx)
        except InputNeeded as needed:
            return needed.result
        limits = TaskLimits(max_cost=max_cost, timeout=timeout)
        return await app.tasks.start(path, task, model=model, approval=approval, apply=apply, limits=limits)

    @tool(server, title="Start a Sidehand task")
    async def start_task(
        task: TaskText,
        ctx: Context[Any, Any],
        workspace: Workspace = None,
        model: Model = None,
        approval: Approval = "risky",
        apply: Apply = "review",
        max_cost: MaxCost = None,
        timeout: Timeout = None,
    ) -> Annotated[CallToolResult, TaskReport] | InputRequiredResult:
        """Start the Sidehand agent on a task in a Docker sandbox mirroring the workspace. Returns at
        once with the task id: poll with get_task (it can wait up to 30 s), stop with cancel_task."""
        with tool_errors():
            started = await start(task, workspace, model, approval, apply, max_cost, timeout, ctx)
            if isinstance(started, InputRequiredResult):
                return started
            _log_until_done(app, started, ctx)
            return result(started.report())

    @tool(server, title="Get a task's status", annotations=read_only)
    async def get_task(
        task_id: TaskId,
        ctx: Context[Any, Any],
        wait: Annotated[
            float, Field(0.0, ge=0, le=MAX_WAIT, description="Seconds to wait for the task to end or ask")
        ] = 0.0,
        since: Annotated[
            int | None,
            Field(None, ge=-1, description="Only events after this seq (next_seq of the last call)"),
        ] = None,
    ) -> Annotated[CallToolResult, TaskReport]:
        """Status, recent events, pending approvals, the change set (once ended) and usage of a task.
        With `wait`, returns as soon as the task ends or needs an approval."""
        with tool_errors():
            found = app.tasks.get(task_id)
            await found.wait(wait, _needs_client)
            report = found.report(since)
            await _log_notices(ctx, found, list(found.events))
            return result(report)

    @tool(server, title="Cancel a task")
    async def cancel_task(task_id: TaskId) -> Annotated[CallToolResult, TaskReport]:
        """Stop a running task: its command is killed and it ends with `cancelled`. Its change set
        so far stays available to apply or discard."""
        with tool_errors():
            return result((await app.tasks.cancel(task_id)).report())

    @tool(server, title="List tasks", annotations=read_only)
    async def list_tasks() -> Annotated[CallToolResult, TaskList]:
        """The tasks this server has started, oldest first."""
        return result(TaskList(tasks=[t.info() for t in app.tasks.tasks.values()]))

    @tool(server, title="Run a Sidehand task and wait")
    async def run_task(
        task: TaskText,
        ctx: Context[Any, Any],
        workspace: Workspace = None,
        model: Model = None,
        approval: Approval = "risky",
        apply: Apply = "review",
        max_cost: MaxCost = None,
        timeout: Timeout = None,
    ) -> Annotated[CallToolResult, TaskReport] | InputRequiredResult:
        """Run the Sidehand agent on a task and return when it ends, with progress notifications
        when the client asked for them. Approvals are asked through elicitation when the client
        supports it. Cancelling this call cancels the task. Prefer start_task for long tasks: many
        clients time tool calls out after about a minute."""
        state = resumed_state(ctx)
        answered = [str(c) for c in state.get("asked", [])] if "task" in state else None
        with tool_errors():
            if answered is not None:  # a later round (2026-07-28): the same task, with the answers
                started = app.tasks.get(str(state["task"]))
                answered = _apply_answers(started, ctx, answered)
            else:
                begun = await start(task, workspace, model, approval, apply, max_cost, timeout, ctx)
                if isinstance(begun, InputRequiredResult):
                    return begun
                started = begun
        request_id = ctx.request_context.request_id
        logger = TaskLogger(started.id, ctx.session, app.log_level, request_id, modern=is_modern(ctx))
        unsubscribe = started.session.subscribe(logger)
        try:
            followed = await _follow(started, ctx, answered)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await app.tasks.cancel(started.id)
            raise
        finally:
            unsubscribe()
            with anyio.CancelScope(shield=True):
                await logger.aclose()
        return followed if isinstance(followed, InputRequiredResult) else result(followed)

    @tool(server, title="Answer an approval request")
    async def answer_approval(
        task_id: TaskId,
        call_id: Annotated[str, Field(min_length=1, max_length=200, description="From pending_approvals")],
        allow: bool,
        scope: Annotated[
            Literal["once", "session", "command_prefix", "path"],
            Field(
                "once",
                description="once: this action; session: this tool for the rest of the task; "
                "command_prefix: these commands (bash); path: edits under this folder (editor). "
                "See the options of pending_approvals; a scope granted for a high-risk action "
                "covers high-risk actions too.",
            ),
        ] = "once",
        reason: Annotated[
            str, Field("", max_length=2000, description="Told to the agent when rejecting")
        ] = "",
    ) -> Annotated[CallToolResult, TaskReport]:
        """Allow or reject an action a task is waiting on (see get_task's pending_approvals)."""
        with tool_errors():
            found = app.tasks.get(task_id)
            found.decide(call_id, _scoped(found, call_id, allow, scope, reason))
            return result(found.report())

    @tool(server, title="Apply changes to the workspace", annotations=ToolAnnotations(destructive_hint=True))
    async def apply_changes(
        id: Annotated[str, Field(min_length=1, max_length=200, description="A task id or a sandbox id")],
        paths: Annotated[
            list[Annotated[str, Field(max_length=4096)]] | None,
            Field(None, max_length=10_000, description="Only these workspace-relative paths (default: all)"),
        ] = None,
        force: Annotated[
            bool, Field(False, description="Overwrite files that changed on the host meanwhile")
        ] = False,
        partial: Annotated[
            bool,
            Field(False, description="Write the files that can be written, and list the refused ones"),
        ] = False,
    ) -> Annotated[CallToolResult, ApplyResult]:
        """Write a finished task's (or a sandbox's) changes to the workspace. Refused, with nothing
        written, when a file changed on the host since the sandbox copied it (unless `force`) or
        cannot be written safely (a symlink, a folder or a special file in the way), unless
        `partial`: then the other files are written and the refused ones listed with the reason."""
        with tool_errors():
            if id in app.sandboxes.open:
                return result(await app.sandboxes.apply(id, paths, force, partial))
            return result(await app.tasks.apply(id, paths, force, partial))

    @tool(server, title="List a task's checkpoints", annotations=read_only)
    async def list_checkpoints(
        id: Annotated[str, Field(min_length=1, max_length=200, description="A task id or a sandbox id")],
    ) -> Annotated[CallToolResult, CheckpointList]:
        """The checkpoints of a task or sandbox: one after every tool call (commands included),
        each restorable with restore_checkpoint."""
        with tool_errors():
            session = app.session(id)
            return result(
                CheckpointList(id=id, checkpoints=[checkpoint_info(c) for c in session.state.checkpoints])
            )

    @tool(server, title="Restore a checkpoint")
    async def restore_checkpoint(
        id: Annotated[str, Field(min_length=1, max_length=200, description="A task id or a sandbox id")],
        checkpoint_id: Annotated[
            str, Field(min_length=1, max_length=20, description="From list_checkpoints")
        ],
    ) -> Annotated[CallToolResult, RestoreResult]:
        """Put the sandbox's files back as they were at a checkpoint. The workspace on the host is
        not touched; files the user made there are kept. The restore is a checkpoint too: restore
        the `undo` checkpoint to go back."""
        with tool_errors():
            report = await app.session(id).restore_checkpoint(checkpoint_id)
            return result(
                RestoreResult(
                    id=id,
                    checkpoint_id=report.checkpoint.checkpoint_id,
                    undo=report.undo,
                    paths=[escape_path(p) for p in report.paths],
                )
            )

    @tool(server, title="Discard a task's changes")
    async def discard_changes(id: TaskId) -> Annotated[CallToolResult, ApplyResult]:
        """Drop a finished task's change set and close its sandbox; the workspace is left as it is."""
        with tool_errors():
            return result(await app.tasks.discard(id))


async def _log_notices(ctx: Context[Any, Any], task: McpTask, events: list[Event]) -> None:
    """The task's notices (a skill file that cannot be used, an MCP server that did not start) as
    log messages to the client, each once."""
    for event in events:
        if isinstance(event, Notice) and event.seq not in task.notices_logged:
            task.notices_logged.add(event.seq)
            await client_log(ctx, event.level, event.message)


def _news(seen: int, asked: set[str]) -> Callable[[McpTask], bool]:
    """The task ended, logged something after `seen`, or asks something not asked yet."""
    return lambda t: t.done or bool(t.events and t.events[-1].seq > seen) or bool(set(t.pending) - asked)


async def _follow(
    task: McpTask, ctx: Context[Any, Any], answered: list[str] | None = None
) -> TaskReport | InputRequiredResult:
    """Wait for the task to end, reporting progress and asking for approvals on the way: over the
    back channel, or (2026-07-28) by returning the questions for the client to answer and call
    again."""
    asked: set[str] = set(answered or ())  # a later round: answered (decided) already
    legacy_asks = _can_elicit_legacy(ctx)
    modern_asks = can_elicit(ctx) and is_modern(ctx)
    step = 0
    seen = -1
    await ctx.report_progress(
        step, None, f"task {task.id} {'running' if answered is not None else 'started'}"
    )
    while not task.done:
        if modern_asks and (waiting := [c for c in task.pending if c not in asked]):
            requests = {call_id: elicit_request(task.id, task.pending[call_id]) for call_id in waiting}
            return input_required(requests, {"task": task.id, "asked": waiting})
        await task.wait(HEARTBEAT, _news(seen, asked))
        new = [e for e in task.events if e.seq > seen]
        step += 1
        if new:
            seen = new[-1].seq
            await _log_notices(ctx, task, new)
            if plans := [e for e in new if isinstance(e, PlanUpdated)]:  # never hidden by later events
                await ctx.report_progress(step, None, plan_text(plans[-1].entries))
                step += 1
            last = brief(new[-1])
            await ctx.report_progress(step, None, f"{last.kind}: {last.summary}")
        else:
            await ctx.report_progress(step, None, f"still {task.status}")
        if legacy_asks and set(task.pending) - asked:
            legacy_asks = await _elicit_approvals(task, ctx, asked)
        elif not legacy_asks and not modern_asks:
            asked.update(task.pending)  # answered by answer_approval or the timeout
    return task.report()
