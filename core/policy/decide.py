"""The approval mode meets the rating and the grants: allow, ask or deny."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import ApprovalMode
from core.events import ApprovalScope
from core.policy.assessment import Risk
from core.policy.grants import Grant, covered
from core.policy.rating import rate_action

Decision = Literal["allow", "ask", "deny"]


@dataclass
class Verdict:
    decision: Decision
    risk: Risk
    reason: str = ""


def rate(tool: str, args: dict[str, Any]) -> tuple[Risk, str]:
    """How risky an action is, with a short reason a person can read."""
    rating = rate_action(tool, args)
    return rating.risk, rating.reason


@dataclass
class Policy:
    """never: run everything; risky: ask for high-risk actions; always: ask for everything that
    does not only read; read_only: deny everything that does not only read. Grants in force (from
    the session's log) allow what they cover, in every mode but read_only."""

    mode: ApprovalMode = "risky"
    grants: list[Grant] = field(default_factory=list)

    def decide(self, tool: str, args: dict[str, Any]) -> Verdict:
        rating = rate_action(tool, args)
        if rating.read_only:
            return Verdict("allow", rating.risk, rating.reason)
        if self.mode == "read_only":
            return Verdict("deny", rating.risk, f"read-only mode: {rating.reason}")
        if covered(self.grants, tool, rating):
            return Verdict("allow", rating.risk, f"approved earlier for this scope ({rating.reason})")
        if self.mode == "never" or (self.mode == "risky" and rating.risk != "high"):
            return Verdict("allow", rating.risk, rating.reason)
        return Verdict("ask", rating.risk, rating.reason)

    def grant(
        self, tool: str, scope: ApprovalScope, pattern: str | None = None, *, high_risk: bool = False
    ) -> None:
        if scope != "once":
            self.grants.append(Grant(scope, tool, pattern, high_risk))
