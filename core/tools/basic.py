"""The `think` and `finish` tools."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from core.tools.base import Observation, Params, Tool, ToolContext


class ThinkParams(Params):
    thought: str = Field(description="Your reasoning.")


class ThinkTool(Tool):
    name = "think"
    description = (
        "Think through a problem step by step, without changing anything. Use it to plan, to weigh "
        "options, or to reason about an error before acting."
    )
    params: ClassVar[type[Params]] = ThinkParams

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        return Observation("Your thought has been logged.")


class FinishParams(Params):
    message: str = Field(description="A short summary for the user of what you did and what is left.")


class FinishTool(Tool):
    name = "finish"
    description = "Call this when the task is complete (or cannot be completed), with a summary for the user."
    params: ClassVar[type[Params]] = FinishParams

    def title(self, params: Params) -> str:
        return "finish"

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        assert isinstance(params, FinishParams)
        return Observation(params.message, finish=True)
