"""A session's state as a pure function of its events: `State.apply` is used both live and when a
log is replayed, so a loaded session is exactly the session that was written."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.events import Event, SessionStatus, ToolCallEvent, UserMessage
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
    messages: list[ChatMessage] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    status: SessionStatus = "idle"
    last_seq: int = -1
    turns: int = 0
    pending_calls: dict[str, ToolCallEvent] = field(default_factory=dict)  # call_id -> action without result
    turn_open: bool = False
    title: str = ""
    workspace: WorkspaceState = field(default_factory=WorkspaceState)
    grants: list[Grant] = field(default_factory=list)  # scoped approvals, in force for the session
    _asked: dict[str, str] = field(default_factory=dict)  # call_id -> tool of a pending approval

    def apply(self, event: Event) -> None:
        if event.seq >= 0:
            self.last_seq = event.seq
        match event.kind:
            case "user_message":
                self.messages.append(ChatMessage(role="user", content=render_user_message(event)))
                self.turn_open = True
                self.turns += 1
                if not self.title and event.text.strip():
                    self.title = event.text.strip().splitlines()[0][:80]
            case "agent_message":
                self.messages.append(ChatMessage(role="assistant", content=event.text))
            case "reply_notice":
                self.messages.append(ChatMessage(role="user", content=event.text))
            case "tool_call":
                self._add_tool_call(event)
            case "tool_result":
                self.pending_calls.pop(event.call_id, None)
                self.messages.append(
                    ChatMessage(role="tool", content=event.output, tool_call_id=event.call_id)
                )
            case "usage":
                self.usage = event.session
            case "state_changed":
                self.status = event.state
            case "turn_ended":
                self.turn_open = False
            case "approval_requested":
                self._asked[event.call_id] = event.tool
            case "approval_granted":
                tool = self._asked.pop(event.call_id, None)
                if tool is not None and event.scope != "once":
                    self.grants.append(Grant(event.scope, tool, event.pattern))
            case "approval_rejected":
                self._asked.pop(event.call_id, None)
            case "workspace_delta":
                self.workspace.apply_delta(event)
            case "apply_started":
                self.workspace.apply_started(event)
            case "apply_finished":
                self.workspace.apply_finished(event)
            case _:
                pass

    def _add_tool_call(self, event: ToolCallEvent) -> None:
        call = ToolCall(id=event.call_id, name=event.tool, arguments=event.arguments)
        self.pending_calls[event.call_id] = event
        last = self.messages[-1] if self.messages else None
        # Calls of one model reply are logged one after another, before any result: they form one
        # assistant message, with the reply's text (an AgentMessage just before) as its content.
        if last is not None and last.role == "assistant":
            self.messages[-1] = last.model_copy(update={"tool_calls": (*last.tool_calls, call)})
        else:
            self.messages.append(ChatMessage(role="assistant", content=None, tool_calls=(call,)))


def replay(events: list[Event]) -> State:
    state = State()
    for event in events:
        state.apply(event)
    return state
