"""A session: one conversation with the agent over one workspace, its log, sandbox and model.

The fronts (CLI, language server, MCP) use only this API: `prompt` (async; events stream to any
number of subscribers), `cancel`, `decide` (approvals), `changes` / `apply_changes`, `close`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.apply import ApplyReport
from core.changes import ChangeSet
from core.condense_summary import make_condenser
from core.config import Settings
from core.controller import Controller, TurnOutcome
from core.errors import SessionBusyError, SessionError
from core.eventlog import EventLog, EventLogError
from core.events import (
    NOT_PERSISTED,
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    Checkpoint,
    ContextItem,
    Event,
    Notice,
    SessionStatus,
    StateChanged,
    ToolCallEvent,
    ToolResultEvent,
    TurnEnded,
    UserMessage,
)
from core.host_watch import HostWatch
from core.mirror import Follower, HostWatches, note_names, session_follower
from core.output import OutputBudget
from core.paths import escape_path
from core.policy import ApprovalDecision as ApprovalDecision  # re-exported: `core.session` has always had it
from core.policy import Policy, Verdict
from core.protocols import LLM, EventSink, ExternalTools, ExternalToolsFactory, Sandbox, SandboxFactory
from core.session_files import HostFollowed, SessionFiles
from core.skill_guide import SkillGuide
from core.state import State
from core.store import SessionStore
from core.tools import Tool
from core.tools.external import external_tools
from core.tools.skill import SkillTool

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


@dataclass(frozen=True)
class RestoreReport:
    checkpoint: Checkpoint  # the one the restore made
    undo: str  # the checkpoint holding the state before the restore (restore it to undo)
    paths: list[str]  # files whose content in the sandbox changed


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
        host_watches: HostWatches | None = None,
        external_tools: ExternalToolsFactory | None = None,
    ) -> None:
        self.id = session_id
        self.workspace = workspace
        self.settings = settings
        self.log = event_log
        self.store = store
        self.state = state
        self._llm_factory = llm_factory
        self.guide = SkillGuide(workspace, settings.user_skills_dir, state, self.emit)
        self._tools = {**tools, "skill": SkillTool(self.guide.load)}
        self._external_factory = external_tools
        self._external: ExternalTools | None = None  # opened at the first turn
        self._models: list[LLM] = []  # the model clients to close
        self._controller: Controller | None = None  # made at the first prompt (with the model client)
        self._sandbox_factory = sandbox_factory
        self._sandbox_task: asyncio.Task[Sandbox] | None = None
        self._listeners: list[EventSink] = []
        self._turn: asyncio.Task[TurnEnded] | None = None
        self._approvals: dict[str, asyncio.Future[ApprovalDecision]] = {}
        self._stop_outcome = TurnOutcome("cancelled", "cancelled by the user")  # for a cancelled turn
        self._sandbox_opened = False
        self._notes: list[str] = []  # for the model, with the next tool result
        self._left_out_told: set[str] = set()
        self._host_watches = host_watches
        self._mirror: Follower | None = None
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
            llm = self._llm_factory(self.settings)
            condenser, summarizer = make_condenser(self.settings, llm, self._llm_factory)
            self._models += [llm, *([summarizer] if summarizer else [])]
            self._controller = Controller(
                settings=self.settings,
                llm=llm,
                sandbox=self.sandbox,
                tools=self._tools,
                policy=self.policy,
                state=self.state,
                emit=self.emit,
                sync=self.sync,
                approve=self._approve,
                after_tool=lambda action: self.after_tool(f"{action.tool}: {action.title}", action.call_id),
                sandbox_note=self.take_sandbox_note,
                outputs=OutputBudget(
                    self.store.outputs_dir(self.id),
                    self.settings.max_saved_output,
                    self.settings.max_session_outputs,
                    redactor=self.log.redactor,
                ),
                condenser=condenser,
                guide=self.guide,
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
                self._notes.append(SANDBOX_RESTARTED)
            self._sandbox_opened = True
            self._sandbox_task = asyncio.create_task(self._open_sandbox())
        self._touch()

    async def _open_sandbox(self) -> Sandbox:
        """A sandbox copied from the host, holding the files the log describes, and following the
        host's changes from then on (the watch is in place before the copy starts)."""
        mirror = self._mirror = await self._start_mirror()
        try:
            sandbox = await self._sandbox_factory(self.workspace, self.id)
        except BaseException:
            await asyncio.shield(self._stop_mirror())
            raise
        try:
            restored = await self.files.restore(sandbox)
        except BaseException:
            await asyncio.shield(sandbox.close())
            await asyncio.shield(self._stop_mirror())
            raise
        if restored:
            log.info("session %s: %d file(s) of its change set put into the new sandbox", self.id, restored)
        if mirror is not None:
            mirror.attach(sandbox)
        return sandbox

    async def _start_mirror(self) -> Follower | None:
        if self._host_watches is None:
            return None
        try:
            watch = await self._host_watches.acquire(self.workspace)
        except Exception:
            log.warning("session %s: no live mirror of the workspace", self.id, exc_info=True)
            return None
        self.files.watch = watch
        return session_follower(watch, self.files, self._note_host_changes)

    def _note_host_changes(self, followed: HostFollowed) -> None:
        """Tell the model what the user changed, once it has worked with the files (before its
        first tool call it has read nothing that could be stale)."""
        if followed.taken and self.state.checkpoints:
            self._notes.append(
                "[The user changed these files on the host; the sandbox has their new content: "
                f"{note_names(followed.taken)}.]"
            )
        if followed.conflicts:
            self._notes.append(
                f"[The user also changed files you had changed: {note_names(followed.conflicts)}. Your "
                "version is kept in the sandbox; the user sees both when reviewing.]"
            )

    async def _stop_mirror(self) -> None:
        mirror, self._mirror = self._mirror, None
        self.files.watch = None
        if mirror is not None and self._host_watches is not None:
            await mirror.close()
            await self._host_watches.release(mirror.watch)

    @property
    def host_watch(self) -> HostWatch | None:
        """The live mirror's watch of the workspace while the sandbox runs (None: no mirror)."""
        return None if self._mirror is None else self._mirror.watch

    async def host_synced(self) -> None:
        """Wait until every host change reported so far is in the sandbox (for tests, benchmarks,
        and a front that must be sure the agent sees what the user just saved)."""
        if self._mirror is not None:
            await self._mirror.idle.wait()

    async def sandbox(self) -> Sandbox:
        self.start_sandbox()
        assert self._sandbox_task is not None
        return await asyncio.shield(self._sandbox_task)

    def take_sandbox_note(self) -> str | None:
        """Notes for the model about its sandbox (it was restarted, the user changed files, some
        files are not in it), each once."""
        task = self._sandbox_task
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            left_out = task.result().left_out
            for path in sorted(set(left_out) - self._left_out_told):
                self._notes.append(f"[{escape_path(path)}: {left_out[path]}.]")
                self._left_out_told.add(path)
        notes = "\n".join(self._notes)
        self._notes.clear()
        return notes or None

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
        await self._stop_mirror()

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
        while self.busy and not self.state.turn_open and self._turn is not None:
            await asyncio.wait({self._turn})  # it has ended and is saving its log: a moment
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
            await self._open_external_tools()
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

    async def _open_external_tools(self) -> None:
        """The tools of the MCP servers the user configured, once per session; a server that does
        not start is reported (a notice) and left out."""
        if self._external_factory is None or self._external is not None:
            return
        try:
            self._external = await self._external_factory(self.workspace, self.settings)
        except Exception as exc:  # the turn goes on without them; the next turn tries again
            log.exception("session %s: cannot load the MCP servers' tools", self.id)
            self.emit(Notice(level="error", message=f"the MCP servers' tools could not be loaded: {exc}"))
            return
        self._tools.update(external_tools(self._external))
        for problem in self._external.problems:
            if problem not in self.state.noticed:
                self.emit(Notice(level="error", message=problem))

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

    # ---- checkpoints ---------------------------------------------------------------------
    async def after_tool(self, label: str, call_id: str | None = None) -> Checkpoint:
        """A tool call ended: log what it changed in the sandbox, and a checkpoint."""
        await self.files.record()
        return self._checkpoint(label, call_id)

    def _checkpoint(self, label: str, call_id: str | None = None, restored: str | None = None) -> Checkpoint:
        number = str(len(self.state.checkpoints) + 1)
        event = self.emit(
            Checkpoint(checkpoint_id=number, label=label[:200], call_id=call_id, restored=restored)
        )
        assert isinstance(event, Checkpoint)
        return event

    def find_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        for checkpoint in self.state.checkpoints:
            if checkpoint.checkpoint_id == checkpoint_id:
                return checkpoint
        known = ", ".join(c.checkpoint_id for c in self.state.checkpoints[-5:]) or "none yet"
        raise SessionError(f"session {self.id} has no checkpoint {checkpoint_id!r} (latest: {known})")

    async def restore_checkpoint(self, checkpoint_id: str) -> RestoreReport:
        """Put the sandbox's files back as they were at a checkpoint (the host is not touched).
        The state before is a checkpoint too, and so is the restore: either can be restored."""
        if self.busy:
            raise SessionBusyError(f"session {self.id} is running a turn: cancel it or wait to restore")
        target = self.find_checkpoint(checkpoint_id)
        history = self.state.workspace.history
        before = self.state.checkpoints[-1] if self.state.checkpoints else None
        if before is None or (history and history[-1].seq > before.seq):  # moved since: keep it
            before = self._checkpoint(f"before restoring checkpoint {checkpoint_id}")
        running = await self.sandbox() if self._sandbox_task is not None else None
        paths = await self.files.restore_checkpoint(target.seq, running)
        made = self._checkpoint(
            f"restored checkpoint {checkpoint_id}: {target.label}", restored=checkpoint_id
        )
        if paths:
            self._notes.append(
                f"[The user restored the sandbox's files to checkpoint {checkpoint_id} ({target.label}): "
                f"{note_names(paths)} changed back.]"
            )
        await self.sync()
        return RestoreReport(checkpoint=made, undo=before.checkpoint_id, paths=paths)

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
        for model in self._models:
            await model.aclose()
        if self._external is not None:
            await self._external.aclose()
        await asyncio.to_thread(self.store.sync_blobs)
        self.log.close()
