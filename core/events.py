"""Session events: frozen pydantic models, one `kind` literal each, joined in a discriminated union.

Every event a session persists carries a per-session `seq`; `AgentMessageChunk` is streamed to
subscribers but never written to the log."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.messages import Usage

Source = Literal["user", "agent", "environment", "system"]
# `stuck`: the stuck detector saw the agent repeat itself after a nudge (core/stuck.py).
# `budget` (cost), `max_tokens` and `timeout` (wall clock): the task's limits (core/budgets.py).
# `interrupted`: the process was told to stop (SIGTERM), or died, during the turn.
# `empty_reply`: the model replied with nothing twice in a row (after a nudge).
StopReason = Literal[
    "end_turn",
    "cancelled",
    "max_iterations",
    "budget",
    "max_tokens",
    "timeout",
    "error",
    "stuck",
    "interrupted",
    "empty_reply",
]
SessionStatus = Literal[
    "idle", "running", "awaiting_approval", "finished", "cancelled", "error", "stuck", "interrupted"
]
ApprovalScope = Literal["once", "session", "command_prefix", "path"]


def _new_id() -> str:
    return uuid.uuid4().hex


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = -1  # assigned by the log when appended
    id: str = Field(default_factory=_new_id)
    timestamp: float = Field(default_factory=time.time)
    source: Source


class ContextItem(BaseModel):
    """Something the user attached to a prompt: a file or a selection in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["file", "selection"]
    uri: str
    text: str | None = None
    # (start line, start character, end line, end character), zero-based like LSP ranges
    range: tuple[int, int, int, int] | None = None


class UserMessage(EventBase):
    kind: Literal["user_message"] = "user_message"
    source: Source = "user"
    text: str
    context: tuple[ContextItem, ...] = ()


class AgentMessage(EventBase):
    kind: Literal["agent_message"] = "agent_message"
    source: Source = "agent"
    text: str


class AgentMessageChunk(EventBase):
    """Streamed text; the finished text arrives as one AgentMessage. Never persisted."""

    kind: Literal["agent_message_chunk"] = "agent_message_chunk"
    source: Source = "agent"
    text: str


class ReplyNotice(EventBase):
    """Sidehand's answer to a model reply it could not act on (an unreadable tool call, a JSON
    object naming no tool, an empty reply): sent to the model as a user message; the turn goes on."""

    kind: Literal["reply_notice"] = "reply_notice"
    source: Source = "system"
    text: str


class ToolCallEvent(EventBase):
    """An action the model asked for. `tool` and `arguments` (JSON text) are the call as the model
    wrote it, normalized (core.tool_calls): our tool names, other agents' extra fields dropped;
    arguments that cannot be read are kept as written."""

    kind: Literal["tool_call"] = "tool_call"
    source: Source = "agent"
    call_id: str
    tool: str
    arguments: str
    title: str = ""


class ToolStarted(EventBase):
    """The tool call passed the policy and is running now. Streamed, never persisted."""

    kind: Literal["tool_started"] = "tool_started"
    source: Source = "environment"
    call_id: str


class ToolResultEvent(EventBase):
    """The observation for a tool call."""

    kind: Literal["tool_result"] = "tool_result"
    source: Source = "environment"
    call_id: str
    tool: str
    output: str
    error: bool = False
    exit_code: int | None = None
    timed_out: bool = False
    truncated: bool = False
    full_output_path: str | None = None
    diff: str | None = None  # for edits: the unified diff of the file
    path: str | None = None  # for edits: the file touched


class ApprovalRequested(EventBase):
    kind: Literal["approval_requested"] = "approval_requested"
    source: Source = "system"
    call_id: str
    tool: str
    arguments: str
    risk: Literal["low", "medium", "high"] = "medium"
    reason: str = ""


class ApprovalGranted(EventBase):
    kind: Literal["approval_granted"] = "approval_granted"
    source: Source = "user"
    call_id: str
    scope: ApprovalScope = "once"
    pattern: str | None = None  # the command prefix or path a scoped approval covers (the first)
    patterns: tuple[str, ...] = ()  # every command prefix it covers (a line of several commands)
    high_risk: bool = False  # the scoped approval covers high-risk actions too (said explicitly)


class ApprovalRejected(EventBase):
    kind: Literal["approval_rejected"] = "approval_rejected"
    source: Source = "user"
    call_id: str
    cancelled: bool = False  # the turn was cancelled while the approval was pending
    reason: str = ""


class Condensation(EventBase):
    """The condenser shortened the model's view (core/condenser.py): the messages made by the
    events `forgotten_from`..`forgotten_to` (seqs, inclusive; -1: none) are replaced by one message,
    `summary`, and the tool results in `masked` (seq -> one line) are shown as that line. The state
    folds it, so the view after it is a function of the log (replay, fork)."""

    kind: Literal["condensation"] = "condensation"
    source: Source = "system"
    summary: str = ""
    forgotten_from: int = -1
    forgotten_to: int = -1
    masked: dict[int, str] = Field(default_factory=dict)
    strategy: str = ""
    tokens_before: int = 0  # the view's tokens (estimated) before and after
    tokens_after: int = 0


class ContextFile(BaseModel):
    """An always-on instruction file (AGENTS.md, CLAUDE.md, …) as it was read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    text: str


class SkillListing(BaseModel):
    """A skill the model may load by name (core/skills.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    path: str


class ContextLoaded(EventBase):
    """What the repository tells the agent, as read now: the always-on instruction files (they
    are in the system prompt) and the skills offered by name. Logged when it changes, so the
    system prompt at any point of a session is a function of its log."""

    kind: Literal["context_loaded"] = "context_loaded"
    source: Source = "system"
    instructions: tuple[ContextFile, ...] = ()
    skills: tuple[SkillListing, ...] = ()


class SkillInjected(EventBase):
    """A skill's text given to the model (folded into its messages): a trigger word appeared in
    the user's message (`reason` "trigger"), or the agent first touched a file below a nested
    AGENTS.md (`reason` "rule", `trigger` the file). At most once per session each."""

    kind: Literal["skill_injected"] = "skill_injected"
    source: Source = "system"
    name: str
    path: str
    reason: Literal["trigger", "rule"]
    trigger: str = ""
    text: str


class Nudge(EventBase):
    """A word to the model from the stuck detector (folded into its messages)."""

    kind: Literal["nudge"] = "nudge"
    source: Source = "system"
    pattern: str  # what repeated: "repeated_action", "repeated_error", "monologue", "alternation"
    text: str


class Notice(EventBase):
    """Something the user should know that is not the agent's doing: a skill file that cannot be
    used, an MCP server that did not start. The fronts show it (LSP window/showMessage, MCP log
    message, CLI stderr)."""

    kind: Literal["notice"] = "notice"
    source: Source = "system"
    level: Literal["info", "warning", "error"] = "warning"
    message: str


class PlanEntry(BaseModel):
    """One item of the agent's task plan (the shape of ACP's plan entries)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    content: str
    status: Literal["pending", "in_progress", "completed"] = "pending"
    priority: Literal["high", "medium", "low"] = "medium"


class PlanUpdated(EventBase):
    """The agent's plan, whole, after its `plan` tool changed it."""

    kind: Literal["plan_updated"] = "plan_updated"
    source: Source = "agent"
    entries: tuple[PlanEntry, ...] = ()


class StateChanged(EventBase):
    kind: Literal["state_changed"] = "state_changed"
    source: Source = "system"
    state: SessionStatus
    reason: str = ""


class UsageRecorded(EventBase):
    """Tokens and cost of one model call, with the session's running totals."""

    kind: Literal["usage"] = "usage"
    source: Source = "system"
    call: Usage
    session: Usage
    model: str | None = None
    context_window: int | None = None  # the model's, in tokens, when known
    purpose: Literal["step", "condenser"] = "step"  # an agent step, or a condensation's summary


class TurnEnded(EventBase):
    kind: Literal["turn_ended"] = "turn_ended"
    source: Source = "system"
    stop_reason: StopReason
    message: str = ""
    changes: tuple[str, ...] = ()  # "A path" / "M path" / "D path" lines of the change set
    iterations: int = 0


class FileRef(BaseModel):
    """A file's content: its md5 (how the sandbox and the host compare files), and its sha256 when
    the content is kept in the session store's blobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    md5: str
    sha256: str | None = None


class WorkspaceDelta(EventBase):
    """The workspace's state moved. `sandbox`: paths whose content in the sandbox is now this
    (None: gone); `base`: paths whose base, the content a change is measured against (what the
    host had), is now this (None: absent on the host). Keys are escaped paths (core.paths).
    Folding these gives the change set at any point of the log: replay, load, fork, checkpoints."""

    kind: Literal["workspace_delta"] = "workspace_delta"
    source: Source = "environment"
    reason: Literal["tool", "apply", "reject", "buffer", "restore", "host"] = "tool"
    sandbox: dict[str, FileRef | None] = Field(default_factory=dict)
    base: dict[str, FileRef | None] = Field(default_factory=dict)


class ApplyEntry(BaseModel):
    """One file of an apply: what the host must hold before (`expect`), what is written (`write`,
    None: delete), and what to put back on a rollback (`previous`, None: nothing was there)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expect: str | None  # md5 of the host file before the write (None: absent)
    write: FileRef | None
    previous: FileRef | None


class ApplyStarted(EventBase):
    """Changes are about to be written to the host: the journal entry, durable before any write."""

    kind: Literal["apply_started"] = "apply_started"
    source: Source = "user"
    apply_id: str
    files: dict[str, ApplyEntry]  # escaped path -> entry


class ApplyFinished(EventBase):
    """The apply of `apply_id` ended. `recovered`: it was found unfinished after a crash and was
    completed or rolled back then (`message` says so for the user)."""

    kind: Literal["apply_finished"] = "apply_finished"
    source: Source = "system"
    apply_id: str
    written: tuple[str, ...] = ()  # escaped paths now on the host
    refused: dict[str, str] = Field(default_factory=dict)  # escaped path -> why
    recovered: Literal["completed", "rolled_back"] | None = None
    message: str = ""


class Checkpoint(EventBase):
    """A state of the sandbox's files to go back to: one after every tool call, and one made by
    each restore (so a restore can be undone). Its files are the fold of the log's workspace events
    up to this one: nothing is copied. `checkpoint_id` counts from 1 in the session (a fork keeps
    the numbers); `call_id` is the tool call it follows; `restored` the checkpoint a restore went
    back to."""

    kind: Literal["checkpoint"] = "checkpoint"
    source: Source = "environment"
    checkpoint_id: str
    label: str
    call_id: str | None = None
    restored: str | None = None


Event = Annotated[
    UserMessage
    | AgentMessage
    | AgentMessageChunk
    | ReplyNotice
    | ToolCallEvent
    | ToolStarted
    | ToolResultEvent
    | ApprovalRequested
    | ApprovalGranted
    | ApprovalRejected
    | Condensation
    | StateChanged
    | UsageRecorded
    | TurnEnded
    | WorkspaceDelta
    | ApplyStarted
    | ApplyFinished
    | Checkpoint
    | ContextLoaded
    | SkillInjected
    | Nudge
    | Notice
    | PlanUpdated,
    Field(discriminator="kind"),
]

# mypy sometimes (depending on its cache) cannot see an Annotated union as a type form.
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)  # type: ignore[arg-type, unused-ignore]
EVENT_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

NOT_PERSISTED = frozenset({"agent_message_chunk", "tool_started"})
