"""Agent tasks for MCP clients: start one, poll it with a bounded wait, cancel it, and apply or
discard its change set. A task is one session running one prompt; the task id is the session id.

Approvals the session asks for are kept pending here: the blocking `run_task` tool asks the client
through elicitation, any client may answer with `answer_approval`, and a question nobody answers
within `approval_timeout` seconds is rejected (the agent is told, and carries on)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent_mcp.models import (
    ApplyMode,
    ApplyResult,
    ApprovalChoice,
    PendingApproval,
    TaskInfo,
    TaskReport,
    TaskStatus,
    brief,
    change_summary,
    usage_info,
)
from core.changes import ChangeSet
from core.config import ApprovalMode
from core.errors import SessionError, SidehandError
from core.events import NOT_PERSISTED, ApprovalRequested, Event, TurnEnded
from core.messages import decode_arguments
from core.paths import escape_path, unescape_path
from core.policy import ApprovalDecision, approval_options
from core.session import Session
from core.sessions import SessionManager

log = logging.getLogger(__name__)

KEPT_EVENTS = 500
REPORTED_EVENTS = 50
ENDED: dict[str, TaskStatus] = {
    "end_turn": "finished",
    "cancelled": "cancelled",
    "error": "error",
    "stuck": "stuck",
    "max_iterations": "max_iterations",
    "budget": "budget",
    "max_tokens": "max_tokens",
    "timeout": "timeout",
    "interrupted": "interrupted",
    "empty_reply": "empty_reply",
}


@dataclass(frozen=True)
class TaskLimits:
    """A task's own limits (None: the server's settings)."""

    max_cost: float | None = None  # USD
    timeout: float | None = None  # seconds


class TaskError(SidehandError):
    """An MCP task call does not fit: unknown id, a task still running, too many tasks, ..."""


class McpTask:
    def __init__(
        self, session: Session, prompt: str, approval: ApprovalMode, apply: ApplyMode, approval_timeout: float
    ) -> None:
        self.id = session.id
        self.session = session
        self.prompt = prompt
        self.approval = approval
        self.apply = apply
        self.approval_timeout = approval_timeout
        self.started = time.time()
        self.ended: float | None = None
        self.end: TurnEnded | None = None
        self.events: deque[Event] = deque(maxlen=KEPT_EVENTS)
        self.pending: dict[str, ApprovalRequested] = {}
        self.notices_logged: set[int] = set()  # seqs of the notices sent to a client as log messages
        self.changes: ChangeSet | None = None
        self.change_state: str = "none"
        self.applied: list[str] = []
        self.apply_error: str | None = None
        self.runner: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._unsubscribe = session.subscribe(self._on_event)

    # ---- lifecycle -----------------------------------------------------------------------
    def begin(self) -> None:
        self.runner = asyncio.create_task(self._run(), name=f"mcp-task-{self.id}")

    async def _run(self) -> None:
        try:
            self.end = await self.session.prompt(self.prompt)
        except SidehandError as exc:
            self.end = TurnEnded(stop_reason="error", message=str(exc))
        except Exception as exc:  # never leave a task "running" forever
            log.exception("task %s failed", self.id)
            self.end = TurnEnded(stop_reason="error", message=f"{type(exc).__name__}: {exc}")
        try:
            self.changes = await self.session.changes()
        except Exception:
            log.exception("task %s: cannot read the change set", self.id)
            self.changes = ChangeSet()
        self.change_state = "pending" if self.changes.files else "none"
        if self.apply == "auto" and self.changes.files:
            try:
                report = await self.session.apply_changes()
                self.applied = [escape_path(p) for p in report.written]
                self.change_state = "applied"
            except SidehandError as exc:  # a conflict: leave the change set for review
                self.apply_error = str(exc)
                log.warning("task %s: auto-apply refused: %s", self.id, exc)
        self.ended = time.time()
        self._notify()

    @property
    def done(self) -> bool:
        return self.ended is not None

    @property
    def status(self) -> TaskStatus:
        if self.end is not None and self.done:
            return ENDED.get(self.end.stop_reason, "error")
        if self.pending:
            return "awaiting_approval"
        return "running" if self.events else "starting"

    # ---- events and waiting --------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if event.kind in NOT_PERSISTED or event.seq < 0:  # streamed only: no seq to report or poll by
            return
        self.events.append(event)
        if isinstance(event, ApprovalRequested):
            self.pending[event.call_id] = event
            loop = asyncio.get_running_loop()
            self._timers[event.call_id] = loop.call_later(self.approval_timeout, self._expire, event.call_id)
        elif event.kind in ("approval_granted", "approval_rejected"):
            self.pending.pop(event.call_id, None)
            if (timer := self._timers.pop(event.call_id, None)) is not None:
                timer.cancel()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, timeout: float, until: Callable[[McpTask], bool]) -> None:
        """Return when `until(self)` holds or `timeout` seconds have passed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(self):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # ---- approvals -----------------------------------------------------------------------
    def decide(self, call_id: str, decision: ApprovalDecision) -> None:
        if call_id not in self.pending:
            waiting = ", ".join(self.pending) or "none"
            raise TaskError(f"task {self.id} has no pending approval {call_id!r} (pending: {waiting})")
        self.session.decide(call_id, decision)

    def _expire(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        if call_id in self.pending:
            with contextlib.suppress(SessionError):
                self.session.decide(
                    call_id,
                    ApprovalDecision(
                        allow=False,
                        reason=f"nobody answered the approval request within {self.approval_timeout:g} s",
                    ),
                )

    # ---- reports -------------------------------------------------------------------------
    def info(self) -> TaskInfo:
        return TaskInfo(
            task_id=self.id,
            status=self.status,
            workspace=str(self.session.workspace),
            task=self.session.redact(self.prompt),
            model=self.session.settings.model,
            approval=self.approval,
            apply=self.apply,
            started=self.started,
            ended=self.ended,
            stop_reason=self.end.stop_reason if self.end and self.done else None,
            message=(self.end.message if self.end and self.done else "")
            + (f"\n(auto-apply refused: {self.apply_error})" if self.apply_error else ""),
        )

    def report(self, since: int | None = None) -> TaskReport:
        events = [e for e in self.events if since is None or e.seq > since]
        changes = None
        if self.changes is not None:
            summary = change_summary(self.changes, "pending")
            changes = summary.model_copy(update={"state": self.change_state, "applied": self.applied})
        return TaskReport(
            info=self.info(),
            events=[brief(e) for e in events[-REPORTED_EVENTS:]],
            next_seq=self.events[-1].seq if self.events else -1,
            pending_approvals=[
                PendingApproval(
                    call_id=a.call_id,
                    tool=a.tool,
                    arguments=a.arguments,
                    risk=a.risk,
                    reason=a.reason,
                    options=[
                        ApprovalChoice(
                            scope=o.decision.scope if o.decision.allow else "reject", label=o.label
                        )
                        for o in approval_options(a.tool, decode_arguments(a.arguments), a.risk)
                    ],
                )
                for a in self.pending.values()
            ],
            changes=changes,
            usage=usage_info(self.session.state.usage),
            plan=list(self.session.state.plan),
        )

    def close(self) -> None:
        self._unsubscribe()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class TaskRegistry:
    def __init__(
        self, manager: SessionManager, *, max_running: int = 8, approval_timeout: float = 300.0
    ) -> None:
        self.manager = manager
        self.max_running = max_running
        self.approval_timeout = approval_timeout
        self.tasks: dict[str, McpTask] = {}

    async def start(
        self,
        workspace: Path,
        prompt: str,
        *,
        model: str | None,
        approval: ApprovalMode,
        apply: ApplyMode,
        limits: TaskLimits | None = None,
    ) -> McpTask:
        if not prompt.strip():
            raise TaskError("the task is empty: say what the agent should do")
        running = sum(1 for t in self.tasks.values() if not t.done)
        if running >= self.max_running:
            raise TaskError(
                f"{running} tasks are already running (the limit is {self.max_running}): wait for one "
                "to finish or cancel one"
            )
        limits = limits or TaskLimits()
        session = await self.manager.create(
            workspace,
            model=model,
            approval_mode=approval,
            max_budget=limits.max_cost,
            turn_timeout=limits.timeout,
        )
        task = McpTask(session, prompt, approval, apply, self.approval_timeout)
        self.tasks[task.id] = task
        task.begin()
        return task

    def get(self, task_id: str) -> McpTask:
        task = self.tasks.get(task_id)
        if task is None:
            known = ", ".join(list(self.tasks)[-5:]) or "none yet"
            raise TaskError(f"unknown task {task_id!r}: list_tasks shows the tasks (recent: {known})")
        return task

    async def cancel(self, task_id: str) -> McpTask:
        task = self.get(task_id)
        if not task.done:
            await task.session.cancel()
            if task.runner is not None:
                await asyncio.wait([task.runner])
        return task

    def _finished(self, task_id: str, verb: str) -> McpTask:
        task = self.get(task_id)
        if not task.done:
            raise TaskError(f"task {task_id} is still {task.status}: {verb} its changes once it has ended")
        if task.change_state == "discarded":
            raise TaskError(f"the changes of task {task_id} were discarded")
        return task

    async def apply(
        self, task_id: str, paths: Sequence[str] | None, force: bool, partial: bool
    ) -> ApplyResult:
        task = self._finished(task_id, "apply")
        session = task.session
        if session.closed:
            return ApplyResult(id=task_id)
        wanted = None if paths is None else [unescape_path(p) for p in paths]
        report = await session.apply_changes(force=force, paths=wanted, partial=partial)
        written = [escape_path(p) for p in report.written]
        task.applied += written
        remaining = await session.changes()
        task.changes = remaining if remaining.files else task.changes
        task.change_state = "pending" if remaining.files else "applied"
        if not remaining.files:
            await self.manager.close(task_id)  # nothing left to review: free the sandbox
        return ApplyResult(
            id=task_id,
            written=written,
            refused={escape_path(p): why for p, why in report.refused.items()},
            remaining=[c.shown_path for c in remaining.files],
        )

    async def discard(self, task_id: str) -> ApplyResult:
        task = self._finished(task_id, "discard")
        task.change_state = "discarded"
        if not task.session.closed:
            await self.manager.close(task_id)
        return ApplyResult(id=task_id, discarded=True)

    async def aclose(self) -> None:
        for task in self.tasks.values():
            if task.runner is not None and not task.done:
                await task.session.cancel(interrupted="the MCP server is stopping")
            task.close()
        runners = [t.runner for t in self.tasks.values() if t.runner is not None]
        if runners:
            await asyncio.wait(runners, timeout=10)
