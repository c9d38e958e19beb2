"""A session: one conversation with the agent over one workspace, its log, sandbox and model.

The fronts (CLI, language server, MCP) use only this API: `prompt` (async; events stream to any
number of subscribers), `cancel`, `decide` (approvals), `changes` / `apply_changes`, `close`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from core.apply import ApplyReport
from core.changes import ChangeSet
from core.config import Settings
from core.controller import Controller, TurnOutcome
from core.errors import SessionBusyError, SessionError
from core.eventlog import EventLog, EventLogError
from core.events import (
    NOT_PERSISTED,
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    ContextItem,
    Event,
    SessionStatus,
    StateChanged,
    ToolCallEvent,
    ToolResultEvent,
    TurnEnded,
    UserMessage,
)
from core.output import OutputBudget
from core.policy import ApprovalDecision as ApprovalDecision  # re-exported: `core.session` has always had it
from core.policy import Policy, Verdict
from core.protocols import LLM, EventSink, Sandbox, SandboxFactory
from core.session_files import SessionFiles
from core.state import State
from core.store import SessionStore
from core.tools import Tool

log = logging.getLogger(__name__)

SANDBOX_RESTARTED = (
    "[The sandbox was restarted (it had been stopped while idle): /workspace holds every change of "
    "this session, but the shell's working directory and environment, and files outside "
    "/workspace, were reset.]"
)
STATE_AFTER: dict[str, SessionStatus] = {
    "end_turn": "finished",
    "cancelled": "cancelled",
    "error": "error",
    "stuck": "stuck",
    "interrupted": "interrupted",
}


class Session:
    def __init__(
        self,
        *,
        session_id: str,
        workspace: Path,
        settings: Settings,
        event_log: EventLog,
        store: SessionStore,
        state: State,
        sandbox_factory: SandboxFactory,
        llm_factory: Callable[[Settings], LLM],
        tools: dict[str, Tool],
    ) -> None:
        self.id = session_id
        self.workspace = workspace
        self.settings = settings
        self.log = event_log
        self.store = store
        self.state = state
        self._llm_factory = llm_factory
        self._tools = tools
        self._controller: Controller | None = None  # made at the first prompt (with the model client)
        self._sandbox_factory = sandbox_factory
        self._sandbox_task: asyncio.Task[Sandbox] | None = None
        self._listeners: list[EventSink] = []
        self._turn: asyncio.Task[TurnEnded] | None = None
        self._approvals: dict[str, asyncio.Future[ApprovalDecision]] = {}
        self._stop_outcome = TurnOutcome("cancelled", "cancelled by the user")  # for a cancelled turn
        self._sandbox_opened = False
        self._sandbox_note: str | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_stop: asyncio.Future[None] | None = None
        self.policy = Policy(settings.approval_mode, grants=state.grants)  # grants: folded from the log
        self.closed = False
        self.files = SessionFiles(workspace, state.workspace, store, self.emit, self.sync, self.sandbox)

    @property
    def controller(self) -> Controller:
        """The step loop, with the model client: made on first use, so a session that only holds a
        sandbox (an MCP client's) needs no model."""
        if self._controller is None:
            self._controller = Controller(
                settings=self.settings,
                llm=self._llm_factory(self.settings),
                sandbox=self.sandbox,
                tools=self._tools,
                policy=self.policy,
                state=self.state,
                emit=self.emit,
                sync=self.sync,
                approve=self._approve,
                after_tool=self.files.record,
                sandbox_note=self.take_sandbox_note,
                outputs=OutputBudget(
                    self.store.outputs_dir(self.id),
                    self.settings.max_saved_output,
                    self.settings.max_session_outputs,
                    redactor=self.log.redactor,
                ),
            )
        return self._controller

    # ---- events --------------------------------------------------------------------------
    def subscribe(self, listener: EventSink) -> Callable[[], None]:
        """Call `listener` with every event from now on (chunks included). Returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def redact(self, text: str) -> str:
        """`text` with the session's secrets masked (for what a front shows that is not an event)."""
        return self.log.redactor(text)

    def emit(self, event: Event) -> Event:
        # The one point where events leave the core: secrets are masked here, before the log, the
        # state (so the model never sees them) and every subscriber (the fronts, the CLI) get it.
        event = self.log.redactor.event(event)
        persisted = event.kind not in NOT_PERSISTED
        stored = self.log.append(event) if persisted else event
        if persisted:
            self.state.apply(stored)
        for listener in list(self._listeners):
            try:
                listener(stored)
            except Exception:
                log.exception("session %s: an event listener failed", self.id)
        return stored

    async def sync(self) -> None:
        """Make everything logged so far durable (off the event loop): the blobs the events refer
        to, then the log."""
        await self.log.sync_off_loop(first=self.store.sync_blobs)

    # ---- sandbox -------------------------------------------------------------------------
    def start_sandbox(self) -> None:
        """Begin creating the sandbox now, so it is ready by the first tool call."""
        if self._sandbox_task is None:
            if self._sandbox_opened:  # stopped while idle: the model must know its shell is new
                self._sandbox_note = SANDBOX_RESTARTED
            self._sandbox_opened = True
            self._sandbox_task = asyncio.create_task(self._open_sandbox())
        self._touch()

    async def _open_sandbox(self) -> Sandbox:
        """A sandbox copied from the host, holding the files the log describes."""
        sandbox = await self._sandbox_factory(self.workspace, self.id)
        try:
            restored = await self.files.restore(sandbox)
        except BaseException:
            await asyncio.shield(sandbox.close())
            raise
        if restored:
            log.info("session %s: %d file(s) of its change set put into the new sandbox", self.id, restored)
        return sandbox

    async def sandbox(self) -> Sandbox:
        self.start_sandbox()
        assert self._sandbox_task is not None
        return await asyncio.shield(self._sandbox_task)

    def take_sandbox_note(self) -> str | None:
        """A note for the model about its sandbox (it was restarted), once."""
        note, self._sandbox_note = self._sandbox_note, None
        return note

    async def stop_sandbox(self) -> None:
        """Stop and remove the sandbox; the session keeps its files (they are in the log) and the
        next use starts a new sandbox holding them."""
        task, self._sandbox_task = self._sandbox_task, None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if task is None:
            return
        try:
            await (await task).close()
        except Exception:
            log.warning("session %s: the sandbox did not start or close cleanly", self.id, exc_info=True)

    def _touch(self) -> None:
        """The sandbox was used: it stops after `sandbox_idle_timeout` seconds without use."""
        timeout = self.settings.sandbox_idle_timeout
        if not timeout or self.closed:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = asyncio.get_running_loop().call_later(timeout, self._idle)

    def _idle(self) -> None:
        self._idle_timer = None
        if self.busy or self._sandbox_task is None:
            self._touch()  # a turn is running (a long command, an approval): not idle
            return
        log.info(
            "session %s: stopping its sandbox after %g s idle", self.id, self.settings.sandbox_idle_timeout
        )
        self._idle_stop = asyncio.ensure_future(self.stop_sandbox())

    # ---- turns ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._turn is not None and not self._turn.done()

    async def prompt(self, text: str, context: Sequence[ContextItem] = ()) -> TurnEnded:
        """Run one turn. Returns when the agent stops; its TurnEnded says why. Cancelling the caller
        does not stop the turn: `cancel` does."""
        if self.closed:
            raise SessionError(f"session {self.id} is closed")
        if self.busy:
            raise SessionBusyError(f"session {self.id} is already running a turn: wait for it, or cancel it")
        if not text.strip():
            raise SessionError("the prompt is empty")
        self.emit(UserMessage(text=text, context=tuple(context)))
        self._stop_outcome = TurnOutcome("cancelled", "cancelled by the user")
        self._turn = asyncio.create_task(self._run_turn())
        return await asyncio.shield(self._turn)

    async def _run_turn(self) -> TurnEnded:
        await self.sync()  # the prompt is durable before the model sees it
        self.emit(StateChanged(state="running"))
        await self._save_meta()
        try:
            outcome = await self.controller.run_turn()
        except asyncio.CancelledError:
            outcome = self._stop_outcome
        except Exception as exc:  # a sandbox or log failure: record it, keep the session usable
            log.exception("session %s: turn failed", self.id)
            outcome = TurnOutcome("error", f"{type(exc).__name__}: {exc}")
        for action in list(self.state.pending_calls.values()):
            reason = "cancelled by the user" if outcome.stop_reason == "cancelled" else outcome.message
            self.emit(
                ToolResultEvent(
                    call_id=action.call_id, tool=action.tool, output=f"Not completed: {reason}.", error=True
                )
            )
        changes = await self._save_changes()
        end = self.emit(
            TurnEnded(
                stop_reason=outcome.stop_reason,
                message=outcome.message,
                changes=tuple(c.line for c in changes.files),
                iterations=outcome.iterations,
            )
        )
        self.emit(StateChanged(state=STATE_AFTER.get(outcome.stop_reason, "idle"), reason=outcome.message))
        await self.sync()
        await self._save_meta()
        assert isinstance(end, TurnEnded)
        return end

    async def _save_changes(self) -> ChangeSet:
        """The turn's change set, also saved as a patch in the session's store."""
        try:
            changes = await self.changes()
            await asyncio.to_thread(self.store.save_patch, self.id, changes.patch())
        except Exception:
            log.exception("session %s: cannot compute the change set", self.id)
            return ChangeSet()
        return changes

    async def cancel(self, *, interrupted: str | None = None) -> None:
        """Stop the running turn: the running command is killed, pending approvals are answered
        cancelled, and the turn ends with stop reason `cancelled` (the user's), or `interrupted`
        with this message (the process is stopping)."""
        if self._turn is not None and not self._turn.done():
            if interrupted is not None:
                self._stop_outcome = TurnOutcome("interrupted", interrupted)
            self._turn.cancel()
            await asyncio.wait([self._turn])

    async def _save_meta(self) -> None:
        """The title and status in the store's metadata (what listings show without the log)."""
        try:
            await asyncio.to_thread(
                self.store.update_meta, self.id, title=self.state.title, status=self.state.status
            )
        except (EventLogError, OSError):
            log.warning("session %s: cannot update its metadata", self.id, exc_info=True)

    # ---- approvals -----------------------------------------------------------------------
    async def _approve(self, action: ToolCallEvent, verdict: Verdict) -> bool:
        future: asyncio.Future[ApprovalDecision] = asyncio.get_running_loop().create_future()
        self._approvals[action.call_id] = future
        self.emit(
            ApprovalRequested(
                call_id=action.call_id,
                tool=action.tool,
                arguments=action.arguments,
                risk=verdict.risk,
                reason=verdict.reason,
            )
        )
        self.emit(StateChanged(state="awaiting_approval"))
        try:
            await self.sync()
            decision = await future
        except asyncio.CancelledError:
            self.emit(
                ApprovalRejected(call_id=action.call_id, cancelled=True, reason="the turn was cancelled")
            )
            raise
        finally:
            self._approvals.pop(action.call_id, None)
        if decision.allow:
            self.emit(
                ApprovalGranted(
                    call_id=action.call_id,
                    scope=decision.scope,
                    pattern=decision.pattern,
                    patterns=decision.patterns,
                    high_risk=decision.high_risk,
                )
            )
        else:
            self.emit(ApprovalRejected(call_id=action.call_id, reason=decision.reason))
        self.emit(StateChanged(state="running"))
        return decision.allow

    @property
    def pending_approvals(self) -> list[str]:
        return list(self._approvals)

    def decide(self, call_id: str, decision: ApprovalDecision) -> None:
        future = self._approvals.get(call_id)
        if future is None or future.done():
            raise SessionError(f"no approval is pending for tool call {call_id!r} in session {self.id}")
        future.set_result(decision)

    # ---- changes -------------------------------------------------------------------------
    async def changes(self) -> ChangeSet:
        """The change set the log describes (the sandbox need not be running)."""
        return await asyncio.to_thread(self.files.changes)

    async def apply_changes(
        self, *, force: bool = False, paths: Sequence[str] | None = None, partial: bool = False
    ) -> ApplyReport:
        """Write the sandbox's changes (all, or those at `paths`) to the user's workspace."""
        changes = await self.changes()
        if paths is not None:
            changes = changes.only(paths)
        return await self.files.apply(changes, force=force, partial=partial)

    # ---- closing -------------------------------------------------------------------------
    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.cancel(interrupted="the session was closed during this turn")
        for future in self._approvals.values():
            future.cancel()
        if self._idle_stop is not None:
            await self._idle_stop
        await self.stop_sandbox()
        if self._controller is not None:
            await self._controller.llm.aclose()
        await asyncio.to_thread(self.store.sync_blobs)
        self.log.close()
