"""The facts of a session that must survive condensation, kept structurally (folded from events),
never left to a summary's luck: every file the agent changed, with a line on the latest change; the
user's requirements, every message in order (the latest wins where they differ); the last command
and the last test run with their status. `render` writes them into each condensation's summary, so
a condensed prompt still names all of them."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from core.events import Event, ToolCallEvent, ToolResultEvent, WorkspaceDelta
from core.messages import decode_arguments
from core.paths import escape_path
from core.policy.commands import base_name
from core.policy.shell import parse
from core.protocols import WORKDIR

# A command that runs tests (its status is kept apart from other commands').
TEST_COMMAND = re.compile(
    r"(?<![\w-])(pytest|py\.test|unittest|tox|nox|jest|vitest|mocha|phpunit|rspec|ctest|"
    r"go\s+test|cargo\s+(test|nextest)|(npm|pnpm|yarn|bun)\s+(run\s+)?test|make\s+(test|check)|"
    r"mvn\s+\S*\s*test|gradlew?\s+test|dotnet\s+test|mix\s+test)(?![\w-])"
)
REQUIREMENTS_CHARS = 12_000  # past this, earlier messages are cut (the latest is kept whole)
LATEST_REQUIREMENT_CHARS = 8_000
EARLIER_REQUIREMENT_CHARS = 600
MAX_FILES_LISTED = 300
EDIT_COMMANDS = frozenset({"create", "str_replace", "insert", "undo_edit"})
# Commands whose operands are files they read (for the folder rules a read makes relevant); for
# the second set the first operand is a pattern or a script, not a file.
READERS = frozenset(
    {"cat", "head", "tail", "less", "more", "nl", "bat", "wc", "od", "xxd", "file", "ls", "tree"}
)
PATTERN_FIRST = frozenset({"grep", "egrep", "fgrep", "rg", "ag", "ack", "sed", "awk"})


def workspace_relative(path: str) -> str | None:
    """A sandbox path as a workspace-relative one, escaped as the change set's paths are
    (core.paths), or None when it is outside /workspace."""
    norm = posixpath.normpath(path if path.startswith("/") else f"{WORKDIR}/{path}")
    if norm == WORKDIR or not norm.startswith(WORKDIR + "/"):
        return None
    return escape_path(norm[len(WORKDIR) + 1 :])


def read_paths(command: str) -> list[str]:
    """The workspace files and folders a command line reads with the usual tools (`cat x`,
    `grep -r pat src/`), workspace-relative; a relative path is taken from /workspace, where the
    shell starts. Globs and computed words are left out."""
    found: list[str] = []
    for simple in parse(command).commands:
        name = base_name(simple.name)  # as the policy names it: /usr/bin/cat is cat
        if name not in READERS and name not in PATTERN_FIRST:
            continue
        operands = [w for w in simple.words[1:] if w is not None and w and not w.startswith("-")]
        if name in PATTERN_FIRST:
            operands = operands[1:]
        for operand in operands:
            if not any(c in operand for c in "*?[") and (rel := workspace_relative(operand)) is not None:
                found.append(rel)
    return found


def _status_line(command: str, event: ToolResultEvent) -> str:
    lines = [line for line in event.output.strip().splitlines() if not line.startswith("[exit code")]
    last = lines[-1].strip()[:200] if lines else ""
    if event.timed_out:
        status = "timed out"
    elif event.exit_code is None:
        status = "did not finish"
    else:
        status = f"exit {event.exit_code}"
    shown = " ".join(command.split())[:200]
    return f"`{shown}` → {status}" + (f": {last}" if last else "")


def _edit_line(command: str, args: dict[str, object], diff: str | None) -> str:
    lines = (diff or "").splitlines()
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    if command == "create":
        return f"created ({added} lines)"
    if command == "undo_edit":
        return f"last edit undone (+{added} -{removed} lines)"
    where = f" after line {args.get('insert_line')}" if command == "insert" else ""
    return f"{command}{where}, +{added} -{removed} lines"


@dataclass
class SessionFacts:
    requirements: list[str] = field(default_factory=list)
    edited: dict[str, str] = field(default_factory=dict)  # workspace-relative path -> latest change
    edit_counts: dict[str, int] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)  # paths read or changed, in order (for rules)
    last_command: str | None = None
    last_test: str | None = None
    skills_used: list[str] = field(default_factory=list)
    _calls: dict[str, ToolCallEvent] = field(default_factory=dict)  # call id -> its action
    _step_edits: set[str] = field(default_factory=set)  # paths the editor described since the last delta
    _last_action: str = ""  # the last command, for changes a command made

    def apply(self, event: Event) -> None:
        match event.kind:
            case "user_message":
                self.requirements.append(event.text)  # attached files are not requirements
            case "tool_call":
                self._calls[event.call_id] = event
                args = decode_arguments(event.arguments)
                path = args.get("path") if event.tool == "editor" else None
                if isinstance(path, str) and (rel := workspace_relative(path)) is not None:
                    self.touched.append(rel)
                elif event.tool == "bash" and not args.get("is_input"):
                    self.touched += read_paths(str(args.get("command", "")))
            case "tool_result":
                self._result(event)
            case "workspace_delta":
                self._delta(event)
            case "skill_injected":
                if event.name not in self.skills_used:
                    self.skills_used.append(event.name)
            case _:
                pass

    def _result(self, event: ToolResultEvent) -> None:
        action = self._calls.pop(event.call_id, None)
        if action is None:
            return
        args = decode_arguments(action.arguments)
        if action.tool == "bash":
            command = str(args.get("command", ""))
            self._last_action = " ".join(command.split())[:120]
            line = _status_line(command, event)
            self.last_command = line
            if TEST_COMMAND.search(command):
                self.last_test = line
        elif action.tool == "editor" and args.get("command") in EDIT_COMMANDS and not event.error:
            rel = workspace_relative(str(args.get("path", "")))
            if rel is not None:
                self._edited(rel, _edit_line(str(args["command"]), args, event.diff))
                self._step_edits.add(rel)
        else:
            if action.tool == "skill" and not event.error and (name := str(args.get("name", ""))):
                self.skills_used += [name] if name not in self.skills_used else []
            self._last_action = action.tool

    def _delta(self, event: WorkspaceDelta) -> None:
        if event.reason != "tool":
            return
        for path, ref in event.sandbox.items():
            if path not in self._step_edits:
                how = "deleted" if ref is None else "changed"
                self._edited(path, f"{how} by `{self._last_action}`" if self._last_action else how)
            self.touched.append(path)
        self._step_edits.clear()

    def _edited(self, rel: str, line: str) -> None:
        self.edited[rel] = line
        self.edit_counts[rel] = self.edit_counts.get(rel, 0) + 1

    # ---- what the model is shown --------------------------------------------------------------
    def render(self) -> str:
        parts = ["## Facts kept from the whole session (exact, not summarized)"]
        if self.requirements:
            parts.append(
                "The user's messages, oldest first (where they differ, the latest wins):\n"
                + "\n".join(self._requirement_lines())
            )
        if self.edited:
            listed = list(self.edited.items())[-MAX_FILES_LISTED:]
            lines = [
                f"- {path}: {line}"
                + (f" (changed {n} times)" if (n := self.edit_counts.get(path, 1)) > 1 else "")
                for path, line in listed
            ]
            if len(self.edited) > len(listed):
                lines.insert(
                    0, f"- … and {len(self.edited) - len(listed)} earlier files (`git status` lists all)"
                )
            parts.append(f"Files you changed in the sandbox ({len(self.edited)}):\n" + "\n".join(lines))
        if self.last_test:
            parts.append(f"Last test run: {self.last_test}")
        if self.last_command and self.last_command != self.last_test:
            parts.append(f"Last command: {self.last_command}")
        if self.skills_used:
            parts.append(
                f"Skills given to you earlier: {', '.join(self.skills_used)} (load one again with the "
                "`skill` tool if you need it)"
            )
        return "\n\n".join(parts)

    def _requirement_lines(self) -> list[str]:
        """Every user message; when they are too long together, the latest whole (up to a cap) and
        the earlier ones cut, the oldest left out first (the very first is kept)."""
        count = len(self.requirements)
        latest = _cut(self.requirements[-1], LATEST_REQUIREMENT_CHARS)
        full = [f"{i}. {text}" for i, text in enumerate(self.requirements[:-1], 1)]
        if sum(len(line) for line in full) + len(latest) <= REQUIREMENTS_CHARS:
            return [*full, f"{count}. (latest) {latest}"]
        earlier = [
            f"{i}. {_cut(text, EARLIER_REQUIREMENT_CHARS)}"
            for i, text in enumerate(self.requirements[:-1], 1)
        ]
        room = REQUIREMENTS_CHARS - len(latest)
        kept = earlier[:1]
        tail: list[str] = []
        for line in reversed(earlier[1:]):
            if sum(len(x) for x in (*kept, *tail)) + len(line) > room:
                break
            tail.insert(0, line)
        skipped = len(earlier) - len(kept) - len(tail)
        gap = [f"   (… {skipped} messages left out)"] if skipped else []
        return [*kept, *gap, *tail, f"{count}. (latest) {latest}"]


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - limit} characters cut …]\n{text[-half:]}"
