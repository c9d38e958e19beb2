"""What a person can answer when Sidehand asks to run an action, the same in every front (the
editor's permission request, the MCP client's elicitation and `answer_approval`, the terminal's
`--confirm` prompt): allow once, allow this tool for the session, always allow these commands (or
edits under this folder), or reject. A scoped answer to a high-risk action covers high-risk
actions too, and its label says so: that is the only way a grant reaches them."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Literal

from core.events import ApprovalScope
from core.policy.assessment import Risk
from core.policy.rating import rate_action

OptionId = Literal["allow_once", "allow_session", "allow_always", "reject"]
OptionKind = Literal["allow_once", "allow_always", "reject_once"]  # the Agent Client Protocol's kinds
OPTION_IDS: tuple[OptionId, ...] = ("allow_once", "allow_session", "allow_always", "reject")
HIGH_RISK_NOTE = " (high-risk ones too)"


@dataclass(frozen=True)
class ApprovalDecision:
    allow: bool
    scope: ApprovalScope = "once"
    pattern: str | None = None  # the command prefix or path a scoped approval covers (the first)
    reason: str = ""
    patterns: tuple[str, ...] = ()  # every command prefix it covers
    high_risk: bool = False  # the approval covers high-risk actions too


@dataclass(frozen=True)
class ApprovalOption:
    id: OptionId
    label: str
    kind: OptionKind
    decision: ApprovalDecision


def approval_options(tool: str, args: dict[str, Any], risk: Risk) -> list[ApprovalOption]:
    """The answers to offer for this action (`allow_always` only when the action has a command
    prefix or a folder to grant)."""
    high = risk == "high"
    note = HIGH_RISK_NOTE if high else ""
    options = [
        ApprovalOption("allow_once", "Allow once", "allow_once", ApprovalDecision(allow=True)),
        ApprovalOption(
            "allow_session",
            f"Allow {tool} for this session{note}",
            "allow_always",
            ApprovalDecision(allow=True, scope="session", high_risk=high),
        ),
    ]
    always = _always(tool, args, high)
    if always is not None:
        options.append(always)
    options.append(
        ApprovalOption(
            "reject", "Reject", "reject_once", ApprovalDecision(allow=False, reason="rejected by the user")
        )
    )
    return options


def _always(tool: str, args: dict[str, Any], high: bool) -> ApprovalOption | None:
    note = HIGH_RISK_NOTE if high else ""
    rating = rate_action(tool, args)
    if tool == "bash":
        prefixes = rating.prefixes
        if not prefixes:
            return None
        shown = ", ".join(f"`{p}`" for p in prefixes)
        decision = ApprovalDecision(
            allow=True, scope="command_prefix", pattern=prefixes[0], patterns=prefixes, high_risk=high
        )
        return ApprovalOption(
            "allow_always", f"Always allow {shown} commands{note}", "allow_always", decision
        )
    if tool == "editor" and rating.path is not None:
        folder = posixpath.dirname(rating.path) or "/"
        decision = ApprovalDecision(
            allow=True, scope="path", pattern=folder, patterns=(folder,), high_risk=high
        )
        return ApprovalOption(
            "allow_always", f"Always allow edits under {folder}{note}", "allow_always", decision
        )
    return None


def decision_for(
    option_id: str, tool: str, args: dict[str, Any], risk: Risk, reason: str = ""
) -> ApprovalDecision:
    """The decision an answer means; an unknown answer rejects."""
    for option in approval_options(tool, args, risk):
        if option.id == option_id:
            if option.id == "reject" and reason:
                return ApprovalDecision(allow=False, reason=reason)
            return option.decision
    return ApprovalDecision(allow=False, reason=reason or f"unknown answer {option_id!r}: rejected")
