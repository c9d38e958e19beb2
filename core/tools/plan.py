"""The `plan` tool: the agent's task list (items with a status and a priority), replaced whole on
each call. The controller logs each new plan as a `PlanUpdated` event, which the fronts show (the
LSP `plan` update, MCP progress, CLI lines)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from core.events import PlanEntry
from core.tools.base import Observation, Params, Tool, ToolContext

MAX_ITEMS = 50
MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}


class PlanParams(Params):
    items: list[PlanEntry] = Field(
        max_length=MAX_ITEMS,
        description=(
            "The whole plan, in order (it replaces the previous one). Each item: `content` (what to "
            "do, one line), `status` (pending, in_progress, completed), `priority` (high, medium, low)."
        ),
    )


def render_plan(entries: tuple[PlanEntry, ...]) -> str:
    done = sum(1 for e in entries if e.status == "completed")
    lines = [f"Plan ({done}/{len(entries)} done):"]
    lines += [
        f"{MARKS[e.status]} {e.content}" + (f" ({e.priority})" if e.priority != "medium" else "")
        for e in entries
    ]
    return "\n".join(lines)


class PlanTool(Tool):
    name = "plan"
    description = (
        "Keep a plan of the task: send the whole list of items each time (it replaces the last). "
        "Use it for work of several steps; mark one item in_progress while you work on it and "
        "completed as soon as it is done. The user sees the plan."
    )
    params: ClassVar[type[Params]] = PlanParams

    def title(self, params: Params) -> str:
        assert isinstance(params, PlanParams)
        done = sum(1 for e in params.items if e.status == "completed")
        return f"plan ({done}/{len(params.items)} done)"

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        assert isinstance(params, PlanParams)
        entries = tuple(
            e.model_copy(update={"content": " ".join(e.content.split())[:500]}) for e in params.items
        )
        if any(not e.content for e in entries):
            return Observation("Every plan item needs a `content`: say what the step is.", error=True)
        note = ""
        if sum(1 for e in entries if e.status == "in_progress") > 1:
            note = "\nNote: several items are in_progress; keep one at a time where you can."
        return Observation(render_plan(entries) + note, plan=entries)
