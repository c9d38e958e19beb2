"""Approval policy: a rule-based risk rating of each action, the approval mode, and scoped grants.

`Policy.decide` answers allow / ask / deny; "ask" makes the controller emit ApprovalRequested and
wait for a decision through the session API."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import ApprovalMode
from core.events import ApprovalScope
from core.tools.external import is_external

Decision = Literal["allow", "ask", "deny"]
Risk = Literal["low", "medium", "high"]

READ_ONLY_COMMANDS = frozenset(
    [
        "ls",
        "cat",
        "head",
        "tail",
        "wc",
        "grep",
        "rg",
        "find",
        "pwd",
        "echo",
        "printf",
        "which",
        "file",
        "stat",
        "du",
        "df",
        "tree",
        "diff",
        "cmp",
        "sort",
        "uniq",
        "env",
        "printenv",
        "id",
        "whoami",
        "date",
        "true",
        "false",
        "test",
        "[",
    ]
)
READ_ONLY_GIT = frozenset({"status", "diff", "log", "show", "branch", "rev-parse", "ls-files", "blame"})
HIGH_RISK = re.compile(
    r"""(\brm\s+(-[a-zA-Z]*[rf]|--recursive|--force)|\bsudo\b|\bsu\b|\bmkfs|\bdd\s|\bshred\b|
    \bchmod\s+-R|\bchown\s+-R|\bgit\s+(push|reset\s+--hard|clean\s+-[a-z]*f)|\bcurl\b.*\|\s*(ba)?sh|
    \bwget\b.*\|\s*(ba)?sh|>\s*/dev/(sd|nvme|vd)|:\(\)\s*\{|\bkill\s+-9\s+-1\b|\breboot\b|\bshutdown\b)""",
    re.VERBOSE,
)
READ_TOOLS = frozenset({"think", "finish", "plan", "skill"})
EDITOR_READS = frozenset({"view"})


@dataclass(frozen=True)
class Grant:
    scope: ApprovalScope
    tool: str
    pattern: str | None = None


@dataclass
class Verdict:
    decision: Decision
    risk: Risk
    reason: str = ""


def rate(tool: str, args: dict[str, Any]) -> tuple[Risk, str]:
    """How risky an action is, with a short reason a person can read."""
    if tool in READ_TOOLS or (tool == "editor" and args.get("command") in EDITOR_READS):
        return "low", "reads only"
    if is_external(tool):  # an MCP server's tool runs on the host, outside the sandbox
        return "high", f"runs the MCP tool {tool.removeprefix('mcp__')} outside the sandbox"
    if tool == "editor":
        return "medium", f"edits {args.get('path', '?')} in the sandbox"
    if tool == "bash":
        command = str(args.get("command", ""))
        if HIGH_RISK.search(command):
            return "high", "destructive or privileged command"
        if _is_read_only(command):
            return "low", "read-only command"
        return "medium", "runs a command in the sandbox"
    return "medium", f"runs tool {tool}"


def _is_read_only(command: str) -> bool:
    if any(ch in command for ch in ">`$("):  # redirections and substitutions can write
        return False
    for part in re.split(r"\|\||&&|[|;]", command):
        try:
            words = shlex.split(part)
        except ValueError:
            return False
        if not words:
            continue
        if words[0] == "git":
            if len(words) < 2 or words[1] not in READ_ONLY_GIT:
                return False
        elif words[0] not in READ_ONLY_COMMANDS:
            return False
    return True


@dataclass
class Policy:
    mode: ApprovalMode = "risky"
    grants: list[Grant] = field(default_factory=list)

    def decide(self, tool: str, args: dict[str, Any]) -> Verdict:
        risk, reason = rate(tool, args)
        if risk == "low":
            return Verdict("allow", risk, reason)
        if self.mode == "read_only":
            return Verdict("deny", risk, f"read-only mode: {reason}")
        if self._granted(tool, args):
            return Verdict("allow", risk, "approved earlier for this scope")
        if self.mode == "never" or (self.mode == "risky" and risk != "high"):
            return Verdict("allow", risk, reason)
        return Verdict("ask", risk, reason)

    def grant(self, tool: str, scope: ApprovalScope, pattern: str | None = None) -> None:
        if scope != "once":
            self.grants.append(Grant(scope, tool, pattern))

    def _granted(self, tool: str, args: dict[str, Any]) -> bool:
        for g in self.grants:
            if g.tool != tool:
                continue
            if g.scope == "session":
                return True
            if (
                g.scope == "command_prefix"
                and g.pattern is not None
                and str(args.get("command", "")).strip().startswith(g.pattern)
            ):
                return True
            if (
                g.scope == "path"
                and g.pattern is not None
                and str(args.get("path", "")).startswith(g.pattern)
            ):
                return True
        return False
