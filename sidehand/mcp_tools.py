"""The factory of a session's MCP tools that `sidehand.wiring` gives the session manager: it reads
the configs (sidehand/mcp_config.py) and, only when there are servers to start, loads the MCP
client (sidehand/mcp_client.py: ~0.4 s of imports, done off the event loop)."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.config import Settings
from core.messages import ToolSpec
from core.protocols import ExternalResult, ExternalTools
from sidehand.mcp_config import load_servers

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 30.0


class NoServers:
    """No MCP server to start (perhaps with problems to report)."""

    def __init__(self, problems: Sequence[str] = ()) -> None:
        self._problems = list(problems)

    @property
    def specs(self) -> Sequence[ToolSpec]:
        return []

    @property
    def problems(self) -> Sequence[str]:
        return self._problems

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> ExternalResult:
        return ExternalResult(f"No MCP server provides {name}.", error=True)

    async def aclose(self) -> None:
        return None


class McpToolsFactory:
    """`core.protocols.ExternalToolsFactory` on the `mcp` SDK's client."""

    def __init__(self, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.startup_timeout = startup_timeout

    async def __call__(self, workspace: Path, settings: Settings) -> ExternalTools:
        servers, problems = await asyncio.to_thread(load_servers, workspace, settings)
        for problem in problems:
            log.warning("%s", problem)
        if not servers:
            return NoServers(problems)
        client = await asyncio.to_thread(importlib.import_module, "sidehand.mcp_client")
        tools: ExternalTools = await client.open_servers(workspace, servers, problems, self.startup_timeout)
        for problem in tools.problems[len(problems) :]:
            log.warning("%s", problem)
        return tools
