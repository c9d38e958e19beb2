"""Scoped approvals ("allow for this session", "always allow these commands", "always allow edits
under this folder") and what they cover. A grant covers an action only if it covers every simple
command of it that does not only read; prefixes match whole words and paths whole components; a
grant covers a high-risk action only when it says so (`high_risk`)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from core.events import ApprovalScope
from core.policy.assessment import within
from core.policy.commands import SAFE_ENV
from core.policy.rating import Rating
from core.policy.shell import SimpleCommand


@dataclass(frozen=True)
class Grant:
    scope: ApprovalScope
    tool: str
    pattern: str | None = None  # the command prefix or path (the first, when there are several)
    high_risk: bool = False  # covers high-risk actions too (the user chose that explicitly)
    patterns: tuple[str, ...] = ()  # every command prefix (a line of several commands)

    @property
    def all_patterns(self) -> tuple[str, ...]:
        return self.patterns or ((self.pattern,) if self.pattern else ())


def covered(grants: Sequence[Grant], tool: str, rating: Rating) -> bool:
    """Whether the grants in force cover this action."""
    mine = [g for g in grants if g.tool == tool and g.scope != "once"]
    if not mine:
        return False
    high = rating.risk == "high"
    if any(g.scope == "session" and (g.high_risk or not high) for g in mine):
        return True
    if tool == "editor":
        return rating.path is not None and any(
            g.scope == "path"
            and (g.high_risk or not high)
            and any(within(rating.path, p) for p in g.all_patterns)
            for g in mine
        )
    if tool != "bash" or not rating.commands or not rating.shape.read_only:
        return False  # a line that does not parse, defines functions, pipes downloads: ask
    prefix_grants = [g for g in mine if g.scope == "command_prefix"]
    for rated in rating.commands:
        if rated.assessment.read_only:
            continue
        needs_high = rated.assessment.risk == "high"
        if not any(
            (g.high_risk or not needs_high) and any(_matches(rated.command, p) for p in g.all_patterns)
            for g in prefix_grants
        ):
            return False
    return True


def _matches(command: SimpleCommand, pattern: str) -> bool:
    try:
        prefix = shlex.split(pattern)
    except ValueError:
        return False
    if not prefix or any(name not in SAFE_ENV for name in command.assignments):
        return False
    words = command.words[: len(prefix)]
    return len(words) == len(prefix) and all(w == p for w, p in zip(words, prefix, strict=True))
