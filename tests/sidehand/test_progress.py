"""What `sidehand run` prints on stderr for the agent's plan, notices, nudges, skills and
condensations, the task's tokens and cost, and the limit flags it takes."""

from __future__ import annotations

import io

from core.events import Condensation, Notice, Nudge, PlanEntry, PlanUpdated, SkillInjected
from core.messages import Usage
from sidehand.cli import build_parser
from sidehand.progress import ProgressPrinter


def test_progress_lines() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out)
    printer(
        PlanUpdated(
            entries=(
                PlanEntry(content="Read", status="completed"),
                PlanEntry(content="Fix", status="in_progress"),
                PlanEntry(content="Test"),
            )
        )
    )
    printer(Notice(level="warning", message="skill file x: bad"))
    printer(Nudge(pattern="monologue", text="[stop thinking]"))
    printer(SkillInjected(name="react", path="react.md", reason="trigger", trigger="React", text="…"))
    printer(Condensation(strategy="masking", tokens_before=61000, tokens_after=30000))
    printer.usage(
        Usage(prompt_tokens=1500, completion_tokens=300, cost=0.25), Usage(prompt_tokens=500, cost=0.05)
    )
    assert out.getvalue().splitlines() == [
        "≡ plan (1/3 done)",
        "  ✓ Read",
        "  ▶ Fix",
        "  ☐ Test",
        "! warning: skill file x: bad",
        "! nudged the agent: [stop thinking]",
        "◆ react.md given to the agent (trigger word 'React')",
        "◇ history condensed (masking): ~61000 → ~30000 tokens",
        "tokens: 1000 prompt + 300 completion = 1300; cost: $0.2000",
    ]


def test_the_limit_flags() -> None:
    args = build_parser().parse_args(
        ["run", "task", "--max-cost", "0.5", "--timeout", "600", "--max-tokens", "9"]
    )
    assert (args.max_budget, args.turn_timeout, args.max_tokens) == (0.5, 600.0, 9)
