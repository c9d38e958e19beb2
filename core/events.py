"""Session events: frozen pydantic models, one `kind` literal each, joined in a discriminated union.

Every event a session persists carries a per-session `seq`; `AgentMessageChunk` is streamed to
subscribers but never written to the log."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.messages import Usage

Source = Literal["user", "agent", "environment", "system"]
# `stuck` is produced by the stuck detector (the agent issue): the fronts already map it.
# `interrupted`: the process was told to stop (SIGTERM), or died, during the turn.
# `empty_reply`: the model replied with nothing twice in a row (after a nudge).
StopReason = Literal[
    "end_turn", "cancelled", "max_iterations", "budget", "error", "stuck", "interrupted", "empty_reply"
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
    pattern: str | None = None  # the command prefix or path a scoped approval covers


class ApprovalRejected(EventBase):
    kind: Literal["approval_rejected"] = "approval_rejected"
    source: Source = "user"
    call_id: str
    cancelled: bool = False  # the turn was cancelled while the approval was pending
    reason: str = ""


class Condensation(EventBase):
    """The condenser replaced a range of the view with a summary. Not emitted yet: the condenser
    that emits it is the agent issue's; the log format is fixed here so replay stays stable."""

    kind: Literal["condensation"] = "condensation"
    source: Source = "system"
    summary: str
    forgotten_from: int
    forgotten_to: int


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
    """A restorable sandbox state. Not emitted yet: checkpoints come with the sandbox issue."""

    kind: Literal["checkpoint"] = "checkpoint"
    source: Source = "system"
    label: str
    data: dict[str, Any] = Field(default_factory=dict)


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
    | Checkpoint,
    Field(discriminator="kind"),
]

# mypy sometimes (depending on its cache) cannot see an Annotated union as a type form.
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)  # type: ignore[arg-type, unused-ignore]
EVENT_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

NOT_PERSISTED = frozenset({"agent_message_chunk", "tool_started"})
