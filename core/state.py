"""A session's state as a pure function of its events: `State.apply` is used both live and when a
log is replayed, so a loaded session is exactly the session that was written."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.condenser import apply_condensation
from core.events import Checkpoint, ContextLoaded, Event, PlanEntry, SessionStatus, ToolCallEvent, UserMessage
from core.facts import SessionFacts
from core.messages import ChatMessage, ToolCall, Usage
from core.policy import Grant
from core.workspace import WorkspaceState


def render_user_message(event: UserMessage) -> str:
    """The user's text with attached context, as the model sees it."""
    if not event.context:
        return event.text
    parts = [event.text]
    for item in event.context:
        where = item.uri
        if item.range is not None:
            where += f" (lines {item.range[0] + 1}-{item.range[2] + 1})"
        label = "Selection in" if item.kind == "selection" else "File"
        parts.append(f"\n{label} {where}:\n```\n{item.text or ''}\n```")
    return "\n".join(parts)


@dataclass
class State:
    messages: list[ChatMessage] = field(default_factory=list)  # the model's view (condensed)
    origins: list[int] = field(default_factory=list)  # the seq of the event each message came from
    usage: Usage = field(default_factory=Usage)
    status: SessionStatus = "idle"
    last_seq: int = -1
    turns: int = 0
    pending_calls: dict[str, ToolCallEvent] = field(default_factory=dict)  # call_id -> action without result
    turn_open: bool = False
    title: str = ""
    workspace: WorkspaceState = field(default_factory=WorkspaceState)
    grants: list[Grant] = field(default_factory=list)  # scoped approvals, in force for the session
    checkpoints: list[Checkpoint] = field(default_factory=list)
    _asked: dict[str, str] = field(default_factory=dict)  # call_id -> tool of a pending approval
    facts: SessionFacts = field(default_factory=SessionFacts)  # what condensation must keep
    context: ContextLoaded = field(default_factory=ContextLoaded)  # instruction files and skills
    plan: tuple[PlanEntry, ...] = ()
    injected: set[str] = field(default_factory=set)  # paths of the skills and rules given to the model
    noticed: set[str] = field(default_factory=set)  # notices shown (each once per session)
    # The last model call's prompt tokens (as the provider counted them) and how many messages of
    # the view it held: the condenser counts from there (None: estimate the whole view).
    prompt_tokens: tuple[int, int] | None = None
    context_window: int | None = None

    def apply(self, event: Event) -> None:
        if event.seq >= 0:
            self.last_seq = event.seq
        self.workspace.remember(event)
        self.facts.apply(event)
        match event.kind:
            case "user_message":
                self._append(ChatMessage(role="user", content=render_user_message(event)), event.seq)
                self.turn_open = True
                self.turns += 1
                if not self.title and event.text.strip():
                    self.title = event.text.strip().splitlines()[0][:80]
            case "agent_message":
                self._append(ChatMessage(role="assistant", content=event.text), event.seq)
            case "reply_notice":
                self._append(ChatMessage(role="user", content=event.text), event.seq)
            case "tool_call":
                self._add_tool_call(event)
            case "tool_result":
                self.pending_calls.pop(event.call_id, None)
                self._append(
                    ChatMessage(role="tool", content=event.output, tool_call_id=event.call_id), event.seq
                )
            case "usage":
                self.usage = event.session
                if event.purpose == "step":  # the agent's model (not the condenser's summarizer)
                    self.context_window = event.context_window or self.context_window
                    if event.call.prompt_tokens > 0:  # some servers report no usage
                        self.prompt_tokens = (event.call.prompt_tokens, len(self.messages))
            case "condensation":
                self.messages, self.origins = apply_condensation(self.messages, self.origins, event)
                self.prompt_tokens = None
            case "context_loaded":
                self.context = event
            case "skill_injected":
                self.injected.add(event.path)
                self._append(ChatMessage(role="user", content=event.text), event.seq)
            case "nudge":
                self._append(ChatMessage(role="user", content=event.text), event.seq)
            case "notice":
                self.noticed.add(event.message)
            case "plan_updated":
                self.plan = event.entries
            case "state_changed":
                self.status = event.state
            case "turn_ended":
                self.turn_open = False
            case "approval_requested":
                self._asked[event.call_id] = event.tool
            case "approval_granted":
                tool = self._asked.pop(event.call_id, None)
                if tool is not None and event.scope != "once":
                    self.grants.append(
                        Grant(event.scope, tool, event.pattern, event.high_risk, tuple(event.patterns))
                    )
            case "approval_rejected":
                self._asked.pop(event.call_id, None)
            case "workspace_delta":
                self.workspace.apply_delta(event)
            case "apply_started":
                self.workspace.apply_started(event)
            case "apply_finished":
                self.workspace.apply_finished(event)
            case "checkpoint":
                self.checkpoints.append(event)
            case _:
                pass

    def _append(self, message: ChatMessage, seq: int) -> None:
        self.messages.append(message)
        self.origins.append(seq)

    def _add_tool_call(self, event: ToolCallEvent) -> None:
        call = ToolCall(id=event.call_id, name=event.tool, arguments=event.arguments)
        self.pending_calls[event.call_id] = event
        last = self.messages[-1] if self.messages else None
        # Calls of one model reply are logged one after another, before any result: they form one
        # assistant message, with the reply's text (an AgentMessage just before) as its content.
        if last is not None and last.role == "assistant":
            self.messages[-1] = last.model_copy(update={"tool_calls": (*last.tool_calls, call)})
        else:
            self._append(ChatMessage(role="assistant", content=None, tool_calls=(call,)), event.seq)


def replay(events: list[Event]) -> State:
    state = State()
    for event in events:
        state.apply(event)
    return state
