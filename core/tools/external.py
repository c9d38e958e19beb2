"""Tools from outside Sidehand (MCP servers the user configured, through the `ExternalTools`
seam): each becomes a Tool whose spec is the server's and whose arguments go to it unchanged
(the server checks them against its schema). They go through the approval policy like any action;
they run outside the sandbox, so the policy rates them high risk (core/policy.py)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict

from core.config import DEFAULT_OUTPUT_LIMIT
from core.messages import ToolSpec
from core.output import OutputCollector
from core.protocols import ExternalTools
from core.tools.base import Observation, Params, Tool, ToolContext

EXTERNAL_PREFIX = "mcp__"  # every external tool's name starts so: no clash with a built-in one


def is_external(tool: str) -> bool:
    return tool.startswith(EXTERNAL_PREFIX)


class ExternalParams(Params):
    model_config = ConfigDict(extra="allow", frozen=True)


class ExternalTool(Tool):
    description = "a tool from an MCP server"
    params: ClassVar[type[Params]] = ExternalParams

    def __init__(self, spec: ToolSpec, source: ExternalTools) -> None:
        self.name = spec.name
        self._spec = spec
        self._source = source

    def spec(self) -> ToolSpec:
        return self._spec

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        result = await self._source.call(self.name, params.model_dump(), ctx.command_timeout)
        # Long output is cut in the middle like a command's, the whole kept in the session's outputs.
        collector = OutputCollector(DEFAULT_OUTPUT_LIMIT, ctx.outputs.file_for(ctx.call_id))
        try:
            collector.feed(result.output.encode("utf-8", "replace"))
        finally:
            collector.close()
        full = collector.full_path if collector.truncated else None
        ctx.outputs.spend(full)
        return Observation(
            collector.text(),
            error=result.error,
            truncated=collector.truncated,
            full_output_path=str(full) if full else None,
        )


def external_tools(source: ExternalTools) -> dict[str, Tool]:
    return {spec.name: ExternalTool(spec, source) for spec in source.specs if is_external(spec.name)}
