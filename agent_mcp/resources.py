"""Session resources: `sidehand://sessions/{id}/events` (JSON Lines, as logged, secrets redacted),
`/diff` (the change set as a unified diff) and `/transcript` (readable Markdown). A session is
readable only when its workspace is inside the allowed roots."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from agent_mcp.workspaces import WorkspaceError, inside
from core.eventlog import EventLogError
from core.events import Event
from core.sessions import SessionManager

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
TRANSCRIPT_OUTPUT_CHARS = 2_000


class SessionNotFound(LookupError):
    pass


def check_session(manager: SessionManager, session_id: str, roots: Sequence[Path]) -> str:
    """`session_id`, once it names a stored session whose workspace is inside the allowed roots."""
    if not SESSION_ID.match(session_id) or ".." in session_id:
        raise SessionNotFound(f"{session_id!r} is not a session id")
    try:
        meta = manager.store.read_meta(session_id)
    except EventLogError as exc:
        raise SessionNotFound(f"unknown session {session_id!r}") from exc
    workspace = Path(meta["workspace"]).resolve()
    if not inside(workspace, roots):
        raise WorkspaceError(f"session {session_id} belongs to a workspace outside the allowed roots")
    return session_id


def events_jsonl(events: Sequence[Event]) -> str:
    return "".join(e.model_dump_json() + "\n" for e in events)


async def session_diff(manager: SessionManager, session_id: str) -> str:
    live = manager.sessions.get(session_id)
    if live is not None and not live.closed:
        return (await live.changes()).patch()
    return manager.store.read_patch(session_id)


def _cut(text: str, limit: int = TRANSCRIPT_OUTPUT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def _fence(text: str) -> str:
    return f"```\n{_cut(text).replace('```', '` ` `')}\n```"


def transcript(events: Sequence[Event]) -> str:
    """The conversation as Markdown: prompts, answers, actions with their results, approvals."""
    out: list[str] = []
    for e in events:
        match e.kind:
            case "user_message":
                out.append(f"## User\n\n{e.text}")
            case "agent_message":
                out.append(f"## Sidehand\n\n{e.text}")
            case "reply_notice":
                out.append(f"*To the model: {e.text}*")
            case "tool_call":
                out.append(f"**{e.tool}** {e.title}\n\n{_fence(e.arguments)}")
            case "tool_result":
                status = "error" if e.error else "ok"
                code = f" (exit {e.exit_code})" if e.exit_code is not None else ""
                out.append(f"→ {status}{code}\n\n{_fence(e.output)}")
            case "approval_requested":
                out.append(f"*Approval requested for {e.tool} ({e.risk} risk): {e.reason}*")
            case "approval_granted":
                out.append(f"*Allowed ({e.scope})*")
            case "approval_rejected":
                out.append(f"*Rejected{': ' + e.reason if e.reason else ''}*")
            case "turn_ended":
                changes = f" — changes: {', '.join(e.changes)}" if e.changes else ""
                out.append(f"*Turn ended: {e.stop_reason}{changes}*")
            case "condensation":
                what = f"*History condensed ({e.strategy}): ~{e.tokens_before} → ~{e.tokens_after} tokens*"
                out.append(f"{what}\n\n{_fence(e.summary)}" if e.summary else what)
            case "skill_injected":
                out.append(f"*Given to the agent: {e.path} ({e.reason}: {e.trigger})*")
            case "nudge":
                out.append(f"*Nudged ({e.pattern}): {e.text}*")
            case "notice":
                out.append(f"*{e.level.capitalize()}: {e.message}*")
            case "plan_updated":
                marks = {"completed": "x", "in_progress": ">", "pending": " "}
                out.append(
                    "**Plan**\n\n" + "\n".join(f"- [{marks[p.status]}] {p.content}" for p in e.entries)
                )
            case _:
                pass
    return "\n\n".join(out) + "\n"
