"""The agent's tools. `default_tools()` is the set a session starts with."""

from __future__ import annotations

from core.tools.base import Observation, Params, Tool, ToolCallError, ToolContext, parse_call, result_event
from core.tools.bash import BashTool
from core.tools.basic import FinishTool, ThinkTool
from core.tools.editor import EditorTool
from core.tools.plan import PlanTool


def default_tools() -> dict[str, Tool]:
    """The built-in tools. A session adds `skill` (core/tools/skill.py) and its external tools."""
    tools: list[Tool] = [BashTool(), EditorTool(), ThinkTool(), PlanTool(), FinishTool()]
    return {t.name: t for t in tools}


__all__ = [
    "Observation",
    "Params",
    "Tool",
    "ToolCallError",
    "ToolContext",
    "default_tools",
    "parse_call",
    "result_event",
]
