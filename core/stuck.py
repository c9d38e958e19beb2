"""The stuck detector: the controller tells it each step of a turn (the calls the model made and
what they returned) and it answers when the agent is going round in circles:

- the same action with the same result, again and again (`repeated_action`);
- the same error again and again: the same action failing the same way, or any actions all
  failing with the very same message (`repeated_error`);
- steps that only think, never act (`monologue`);
- two actions taking turns, each with its same result (`alternation`).

A result must be the same to count: an agent polling a long-running job whose output still changes
is working, not stuck. The first time, the model gets a nudge (a message saying what repeated);
if it goes on, the turn ends with stop reason `stuck` and a message saying what repeated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

REPEATS = 4  # the same action with the same result, this many steps in a row
ERROR_REPEATS = 3  # the same action with the same error
SAME_ERRORS = 5  # any actions, all with the very same error message
MONOLOGUE = 6  # steps that only think
ALTERNATIONS = 3  # A B A B A B: each of the two this many times


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: str
    output: str
    error: bool


@dataclass(frozen=True)
class Step:
    calls: tuple[Call, ...]

    @property
    def action(self) -> tuple[tuple[str, str], ...]:
        return tuple((c.tool, _canonical(c.arguments)) for c in self.calls)

    @property
    def result(self) -> tuple[tuple[str, bool], ...]:
        return tuple((c.output, c.error) for c in self.calls)

    @property
    def failed(self) -> bool:
        return bool(self.calls) and all(c.error for c in self.calls)

    def shown(self) -> str:
        return "; ".join(f"{c.tool} {_brief(c.arguments)}" for c in self.calls) or "no action"


@dataclass(frozen=True)
class Finding:
    pattern: Literal["repeated_action", "repeated_error", "monologue", "alternation"]
    what: str  # says what repeated, for the model and the user


@dataclass(frozen=True)
class Verdict:
    """The detector's answer after a step: nudge the model, or stop the turn."""

    action: Literal["nudge", "stop"]
    finding: Finding
    text: str


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments


def _brief(arguments: str) -> str:
    text = " ".join(arguments.split())
    return text if len(text) <= 160 else text[:159] + "…"


def detect(steps: Sequence[Step]) -> Finding | None:
    """What the newest steps repeat, if anything."""
    last = steps[-1] if steps else None
    if last is None:
        return None
    if _same(steps[-ERROR_REPEATS:], ERROR_REPEATS) and last.failed:
        return Finding(
            "repeated_error", f"{last.shown()} failed {ERROR_REPEATS} times in a row with the same error"
        )
    if _same(steps[-REPEATS:], REPEATS):
        return Finding("repeated_action", f"{last.shown()} ran {REPEATS} times in a row with the same result")
    tail = steps[-SAME_ERRORS:]
    if len(tail) == SAME_ERRORS and all(s.failed for s in tail) and len({s.result for s in tail}) == 1:
        message = " ".join(last.calls[0].output.split())[:200]
        return Finding(
            "repeated_error", f"{SAME_ERRORS} steps in a row failed with the same error: {message}"
        )
    tail = steps[-MONOLOGUE:]
    if len(tail) == MONOLOGUE and all(s.calls and all(c.tool == "think" for c in s.calls) for s in tail):
        return Finding("monologue", f"{MONOLOGUE} steps in a row only thought, without acting")
    tail = steps[-2 * ALTERNATIONS :]
    if len(tail) == 2 * ALTERNATIONS and _same(tail[0::2], ALTERNATIONS) and _same(tail[1::2], ALTERNATIONS):
        a, b = tail[-2], tail[-1]
        if a.action != b.action:
            return Finding(
                "alternation",
                f"{a.shown()} and {b.shown()} took turns {ALTERNATIONS} times each, with the same results",
            )
    return None


def _same(steps: Sequence[Step], count: int) -> bool:
    """`count` steps with the same action and the same result."""
    return (
        len(steps) == count
        and all(s.calls for s in steps)
        and len({s.action for s in steps}) == 1
        and len({s.result for s in steps}) == 1
    )


class StuckDetector:
    """One turn's steps; nudges once per stuck spell, then stops."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.nudged = False

    def start_turn(self) -> None:
        self.steps.clear()
        self.nudged = False

    def after_step(self, calls: Sequence[Call]) -> Verdict | None:
        self.steps.append(Step(tuple(calls)))
        finding = detect(self.steps)
        if finding is None:
            self.nudged = False  # it moved on: a later spell gets a nudge first again
            return None
        if not self.nudged:
            self.nudged = True
            return Verdict("nudge", finding, nudge_text(finding))
        return Verdict("stop", finding, f"the agent is stuck: {finding.what}, and went on after being told")


def nudge_text(finding: Finding) -> str:
    return (
        f"[Sidehand: you seem to be stuck: {finding.what}. Doing it again will not change the "
        "result. Step back: re-read the error or the file, try a different approach, or, if "
        "something outside your control blocks you, call `finish` and say what it is.]"
    )
