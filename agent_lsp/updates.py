"""Core events → `sidehand/session/update` payloads (one translator per session).

Each notification carries the session id, a per-session sequence number (gap-free, in the order
sent) and one update, discriminated by `sessionUpdate` as in the Agent Client Protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.events import (
    AgentMessage,
    AgentMessageChunk,
    ApprovalRejected,
    ApprovalRequested,
    Checkpoint,
    Event,
    PlanEntry,
    PlanUpdated,
    StateChanged,
    ToolCallEvent,
    ToolResultEvent,
    ToolStarted,
    TurnEnded,
    UsageRecorded,
    UserMessage,
)
from core.messages import Usage, decode_arguments
from core.protocols import WORKDIR

Update = dict[str, Any]

TOOL_KINDS = {"bash": "execute", "think": "think", "plan": "think", "skill": "read", "finish": "other"}


def tool_kind(tool: str, args: dict[str, Any]) -> str:
    if tool == "editor":
        return "read" if args.get("command") == "view" else "edit"
    return TOOL_KINDS.get(tool, "other")


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "cost": usage.cost,
    }


def checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "checkpointId": checkpoint.checkpoint_id,
        "label": checkpoint.label,
        "toolCallId": checkpoint.call_id,
        "timestamp": checkpoint.timestamp,
        "restored": checkpoint.restored,
    }


def text_content(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def plan_update(entries: tuple[PlanEntry, ...]) -> Update:
    """ACP's plan update: the whole plan, each entry `content`, `status`, `priority`."""
    return {"sessionUpdate": "plan", "entries": [e.model_dump() for e in entries]}


class UpdateTranslator:
    """Turns one session's events into updates (one translator per session)."""

    def __init__(self, session_id: str, workspace: Path, send: Callable[[dict[str, Any]], None]) -> None:
        self.session_id = session_id
        self.workspace = workspace
        self._send = send
        self.seq = 0
        self.turn_usage = Usage()
        self.calls: dict[str, ToolCallEvent] = {}
        self.status: dict[str, str] = {}
        self.plan: tuple[PlanEntry, ...] = ()

    def publish(self, update: Update) -> None:
        self._send({"sessionId": self.session_id, "seq": self.seq, "update": update})
        self.seq += 1

    def host_path(self, path: str) -> str:
        rel = path.removeprefix(WORKDIR).lstrip("/") if path.startswith(WORKDIR) else path
        return str(self.workspace / rel) if not Path(rel).is_absolute() else rel

    def on_event(self, event: Event) -> None:
        for update in self.translate(event):
            self.publish(update)

    def translate(self, event: Event) -> list[Update]:
        if isinstance(event, AgentMessageChunk):
            return [{"sessionUpdate": "agent_message_chunk", "content": text_content(event.text)}]
        if isinstance(event, AgentMessage):
            return [{"sessionUpdate": "agent_message", "content": text_content(event.text)}]
        if isinstance(event, UserMessage):
            self.turn_usage = Usage()
            return [
                {"sessionUpdate": "user_message", "content": text_content(event.text)},
                plan_update(self.plan),  # the plan so far, at each turn's start
            ]
        if isinstance(event, PlanUpdated):
            self.plan = event.entries
            return [plan_update(event.entries)]
        if isinstance(event, ToolCallEvent):
            self.calls[event.call_id] = event
            return [self._call_update(event.call_id, "pending", full=True)]
        if isinstance(event, ApprovalRequested):
            return [self._call_update(event.call_id, "pending", awaitingApproval=True)]
        if isinstance(event, ToolStarted):
            return [self._call_update(event.call_id, "in_progress")]
        if isinstance(event, ApprovalRejected):
            self.status[event.call_id] = "rejected"  # the tool result that follows says so
            return []
        if isinstance(event, ToolResultEvent):
            return [self._result_update(event)]
        if isinstance(event, UsageRecorded):
            self.turn_usage = self.turn_usage + event.call
            return [
                {
                    "sessionUpdate": "usage",
                    "model": event.model,
                    "call": usage_json(event.call),
                    "turn": usage_json(self.turn_usage),
                    "session": usage_json(event.session),
                }
            ]
        if isinstance(event, StateChanged):
            return [{"sessionUpdate": "state", "state": event.state, "reason": event.reason}]
        if isinstance(event, Checkpoint):
            return [{"sessionUpdate": "checkpoint", **checkpoint_json(event)}]
        if isinstance(event, TurnEnded):
            return [
                {
                    "sessionUpdate": "turn_end",
                    "stopReason": event.stop_reason,
                    "message": event.message,
                    "changes": list(event.changes),
                }
            ]
        return []  # condensations, skills, notices (window/showMessage) and checkpoints are not here

    def _call_update(self, call_id: str, status: str, *, full: bool = False, **extra: Any) -> Update:
        self.status[call_id] = status
        update: Update = {"sessionUpdate": "tool_call", "toolCallId": call_id, "status": status, **extra}
        action = self.calls.get(call_id)
        if full and action is not None:
            args = decode_arguments(action.arguments)
            update.update(
                kind=tool_kind(action.tool, args),
                title=action.title or action.tool,
                tool=action.tool,
                rawInput=args,
                locations=[{"path": self.host_path(args["path"])}]
                if isinstance(args.get("path"), str)
                else [],
            )
        return update

    def _result_update(self, event: ToolResultEvent) -> Update:
        update = self._call_update(event.call_id, "failed" if event.error else "completed")
        action = self.calls.get(event.call_id)
        args = decode_arguments(action.arguments) if action else {}
        content: list[dict[str, Any]]
        if event.diff is not None or (event.path and tool_kind(event.tool, args) == "edit"):
            diff: dict[str, Any] = {
                "type": "diff",
                "path": self.host_path(event.path or str(args.get("path", ""))),
                "unifiedDiff": event.diff or "",
            }
            if args.get("command") == "create":
                diff["newText"] = args.get("file_text", "")
            elif args.get("command") == "str_replace":
                diff.update(oldText=args.get("old_str", ""), newText=args.get("new_str", ""))
            content = [diff, text_content(event.output)]
        elif event.tool == "bash":
            content = [
                {
                    "type": "output",
                    "text": event.output,
                    "exitCode": event.exit_code,
                    "timedOut": event.timed_out,
                    "truncated": event.truncated,
                }
            ]
        else:
            content = [text_content(event.output)]
        update["content"] = content
        return update
