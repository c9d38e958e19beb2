"""The structured results of the MCP tools: their JSON schemas are the tools' output schemas, and
`text()` gives the readable form that goes in the result's text content."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.changes import ChangeSet
from core.config import ApprovalMode
from core.events import Checkpoint, Event, PlanEntry
from core.messages import Usage

TaskStatus = Literal[
    "starting",
    "running",
    "awaiting_approval",
    "finished",
    "cancelled",
    "error",
    "stuck",
    "max_iterations",
    "budget",
    "max_tokens",
    "timeout",
    "interrupted",
    "empty_reply",
]
ApplyMode = Literal["review", "auto"]
SUMMARY_CHARS = 400


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class EventBrief(_Out):
    seq: int
    kind: str
    summary: str = Field(description="One readable line (long text is cut)")


class FileChangeBrief(_Out):
    path: str
    status: Literal["added", "modified", "deleted"]
    added_lines: int = 0
    removed_lines: int = 0
    binary: bool = False
    conflict: bool = Field(
        False, description="the user changed this file on the host too: applying needs force"
    )
    host_diff: str | None = Field(None, description="the user's change to the file, from the same base")


class ChangeSummary(_Out):
    files: list[FileChangeBrief] = Field(default_factory=list)
    state: Literal["pending", "applied", "discarded", "none"] = "none"
    applied: list[str] = Field(default_factory=list, description="paths written to the workspace")

    def text(self) -> str:
        if not self.files:
            return "changes: none"
        lines = [f"changes ({self.state}):"]
        lines += [
            f"  {f.status[0].upper()} {f.path} (+{f.added_lines} -{f.removed_lines})"
            + (" conflict: changed on the host too" if f.conflict else "")
            for f in self.files
        ]
        return "\n".join(lines)


class UsageInfo(_Out):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class ApprovalChoice(_Out):
    scope: str = Field(description="answer_approval's scope for this answer (reject: allow=false)")
    label: str


class PendingApproval(_Out):
    call_id: str
    tool: str
    arguments: str
    risk: str
    reason: str
    options: list[ApprovalChoice] = Field(default_factory=list, description="What can be answered")


class TaskInfo(_Out):
    task_id: str = Field(description="Also the session id: sidehand://sessions/{task_id}/events etc.")
    status: TaskStatus
    workspace: str
    task: str
    model: str | None = None
    approval: ApprovalMode
    apply: ApplyMode
    started: float
    ended: float | None = None
    stop_reason: str | None = None
    message: str = Field("", description="The agent's final message (when it ended)")

    def line(self) -> str:
        return f"{self.task_id}  {self.status:<17} {self.workspace}  {self.task[:80]}"


class TaskReport(_Out):
    info: TaskInfo
    events: list[EventBrief] = Field(default_factory=list)
    next_seq: int = Field(-1, description="Pass as `since` to get only newer events next time")
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    changes: ChangeSummary | None = Field(None, description="Known once the task ended")
    usage: UsageInfo = UsageInfo()
    plan: list[PlanEntry] = Field(default_factory=list, description="The agent's plan (its `plan` tool)")

    def text(self) -> str:
        info = self.info
        lines = [
            f"task {info.task_id}: {info.status}" + (f" ({info.stop_reason})" if info.stop_reason else "")
        ]
        if info.message:
            lines.append(f"message: {info.message}")
        for approval in self.pending_approvals:
            lines.append(
                f"awaiting approval {approval.call_id}: {approval.tool} {approval.arguments[:200]} "
                f"(risk {approval.risk}) — answer with answer_approval"
            )
        if self.plan:
            lines.append(plan_text(self.plan))
        lines += [f"  [{e.seq}] {e.kind}: {e.summary}" for e in self.events]
        if self.changes is not None:
            lines.append(self.changes.text())
        u = self.usage
        lines.append(
            f"usage: {u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, ${u.cost:.4f}"
        )
        return "\n".join(lines)


class TaskList(_Out):
    tasks: list[TaskInfo]

    def text(self) -> str:
        return "\n".join(t.line() for t in self.tasks) if self.tasks else "no tasks"


class CheckpointInfo(_Out):
    checkpoint_id: str
    label: str
    call_id: str | None = Field(None, description="the tool call it follows")
    timestamp: float
    restored: str | None = Field(None, description="the checkpoint this restore went back to")


class CheckpointList(_Out):
    id: str
    checkpoints: list[CheckpointInfo] = Field(default_factory=list)

    def text(self) -> str:
        if not self.checkpoints:
            return f"{self.id}: no checkpoints yet (one is taken after every tool call)"
        return "\n".join(f"{c.checkpoint_id}: {c.label}" for c in self.checkpoints)


class RestoreResult(_Out):
    id: str
    checkpoint_id: str = Field(description="the checkpoint the restore made (restore it to undo)")
    undo: str = Field(description="the checkpoint holding the state before the restore: restore it to undo")
    paths: list[str] = Field(default_factory=list, description="files whose sandbox content changed")

    def text(self) -> str:
        changed = ", ".join(self.paths) or "no file"
        return f"{self.id}: restored ({changed} changed); undo: restore checkpoint {self.undo}"


def checkpoint_info(checkpoint: Checkpoint) -> CheckpointInfo:
    return CheckpointInfo(
        checkpoint_id=checkpoint.checkpoint_id,
        label=checkpoint.label,
        call_id=checkpoint.call_id,
        timestamp=checkpoint.timestamp,
        restored=checkpoint.restored,
    )


class ApplyResult(_Out):
    id: str
    written: list[str] = Field(default_factory=list)
    refused: dict[str, str] = Field(
        default_factory=dict, description="paths not written (partial apply), and why"
    )
    remaining: list[str] = Field(default_factory=list, description="changed paths not applied yet")
    discarded: bool = False

    def text(self) -> str:
        if self.discarded:
            return f"{self.id}: changes discarded; the sandbox is closed"
        done = ", ".join(self.written) or "nothing"
        refused = "".join(f"; refused {path}: {why}" for path, why in self.refused.items())
        rest = f"; still pending: {', '.join(self.remaining)}" if self.remaining else ""
        return f"{self.id}: wrote {done}{refused}{rest}"


class SandboxInfo(_Out):
    sandbox_id: str
    workspace: str
    workdir: str = Field(description="Where the workspace copy is inside the sandbox")

    def text(self) -> str:
        return f"sandbox {self.sandbox_id}: {self.workspace} mirrored at {self.workdir}"


class CommandOutput(_Out):
    output: str
    exit_code: int | None = Field(description="None when the command did not finish")
    timed_out: bool = False
    truncated: bool = False

    def text(self) -> str:
        return self.output


class EditorOutput(_Out):
    path: str
    output: str = Field(description="`cat -n` style numbered lines, or what the edit did")
    diff: str | None = Field(None, description="For edits: the unified diff of the file")

    def text(self) -> str:
        return self.output


class SearchMatch(_Out):
    path: str
    line: int
    text: str


class SearchResult(_Out):
    matches: list[SearchMatch]
    truncated: bool = Field(False, description="More matches exist than were returned")

    def text(self) -> str:
        if not self.matches:
            return "no matches"
        more = "\n[more matches: narrow the pattern or the path]" if self.truncated else ""
        return "\n".join(f"{m.path}:{m.line}:{m.text}" for m in self.matches) + more


class DiffResult(_Out):
    files: list[FileChangeBrief]
    patch: str

    def text(self) -> str:
        return self.patch or "no changes"


PLAN_MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}


def plan_text(entries: list[PlanEntry] | tuple[PlanEntry, ...]) -> str:
    done = sum(1 for e in entries if e.status == "completed")
    return f"plan ({done}/{len(entries)} done): " + "; ".join(
        f"{PLAN_MARKS[e.status]} {e.content}" for e in entries
    )


def change_summary(
    changes: ChangeSet, state: Literal["pending", "applied", "discarded", "none"]
) -> ChangeSummary:
    return ChangeSummary(files=file_briefs(changes), state=state if changes.files else "none")


def file_briefs(changes: ChangeSet) -> list[FileChangeBrief]:
    out = []
    for change in changes.files:
        lines = change.diff.splitlines()
        added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
        out.append(
            FileChangeBrief(
                path=change.shown_path,
                status=change.status,
                added_lines=added,
                removed_lines=removed,
                binary=change.binary,
                conflict=change.conflict,
                host_diff=change.host_diff,
            )
        )
    return out


def usage_info(usage: Usage) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost=usage.cost
    )


def _cut(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def brief(event: Event) -> EventBrief:
    """A one-line, readable description of an event."""
    match event.kind:
        case "user_message" | "agent_message" | "agent_message_chunk" | "reply_notice":
            summary = _cut(event.text)
        case "tool_call":
            summary = f"{event.tool}: {_cut(event.title or event.arguments)}"
        case "tool_result":
            status = "error" if event.error else "ok"
            code = f", exit {event.exit_code}" if event.exit_code is not None else ""
            summary = f"{event.tool} {status}{code}: {_cut(event.output)}"
        case "approval_requested":
            summary = f"{event.tool} ({event.risk} risk) {_cut(event.arguments)}"
        case "approval_granted":
            summary = f"{event.call_id} allowed ({event.scope})"
        case "approval_rejected":
            summary = f"{event.call_id} rejected {_cut(event.reason)}".rstrip()
        case "state_changed":
            summary = event.state + (f": {_cut(event.reason)}" if event.reason else "")
        case "usage":
            summary = f"{event.call.prompt_tokens}+{event.call.completion_tokens} tokens"
        case "turn_ended":
            summary = event.stop_reason + (f": {_cut(event.message)}" if event.message else "")
        case "condensation":
            summary = f"{event.strategy}: {event.tokens_before} -> {event.tokens_after} tokens"
        case "plan_updated":
            summary = _cut(plan_text(event.entries))
        case "notice":
            summary = f"{event.level}: {_cut(event.message)}"
        case "skill_injected":
            summary = f"{event.name} ({event.reason}: {_cut(event.trigger)})"
        case "nudge":
            summary = _cut(event.text)
        case "checkpoint":
            summary = event.label
        case _:  # a kind added to the core later: still listed
            summary = event.kind
    return EventBrief(seq=event.seq, kind=event.kind, summary=summary)
