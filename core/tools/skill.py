"""The `skill` tool: the model loads a skill listed in its system prompt by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from pydantic import Field

from core.tools.base import Observation, Params, Tool, ToolContext


class SkillParams(Params):
    name: str = Field(description="The skill's name, as listed under Skills in your instructions.")


class SkillTool(Tool):
    name = "skill"
    description = (
        "Load a skill: instructions for a particular kind of work, listed by name under Skills in "
        "your instructions. Load one when the task calls for it, then follow it."
    )
    params: ClassVar[type[Params]] = SkillParams

    def __init__(self, load: Callable[[str], Observation]) -> None:
        self._load = load  # the session's skills (core/skill_guide.py)

    def title(self, params: Params) -> str:
        assert isinstance(params, SkillParams)
        return f"skill {params.name}"

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        assert isinstance(params, SkillParams)
        return self._load(params.name.strip())
