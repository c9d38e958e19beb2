"""Approval policy: a rule-based risk rating of each action (a bash line parsed into its simple
commands: `shell`, `commands`, `git`, `rating`), the approval mode (`decide`), scoped grants
(`grants`) and the answers a person can give (`options`).

`Policy.decide` answers allow / ask / deny; "ask" makes the controller emit ApprovalRequested and
wait for a decision through the session API."""

from core.policy.assessment import Risk
from core.policy.decide import Decision, Policy, Verdict, rate
from core.policy.grants import Grant, covered
from core.policy.options import (
    OPTION_IDS,
    ApprovalDecision,
    ApprovalOption,
    approval_options,
    decision_for,
)
from core.policy.rating import Rating, rate_action

__all__ = [
    "OPTION_IDS",
    "ApprovalDecision",
    "ApprovalOption",
    "Decision",
    "Grant",
    "Policy",
    "Rating",
    "Risk",
    "Verdict",
    "approval_options",
    "covered",
    "decision_for",
    "rate",
    "rate_action",
]
