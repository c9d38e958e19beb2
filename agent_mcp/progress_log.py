"""The MCP `logging` capability: the agent's progress as `notifications/message` log messages.

A client on the handshake-era protocol sets the level with `logging/setLevel` (default `info`);
on 2026-07-28 a client opts in per request (the SDK filters by the level it names). `run_task`
logs on its own request; a task started by `start_task` logs on the connection (which the
2026-07-28 protocol does not carry: there, poll `get_task` or call `run_task`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from typing import Any, get_args

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import EmptyResult, LoggingLevel, RequestId, SetLevelRequestParams

from agent_mcp.models import brief
from core.events import Event

log = logging.getLogger(__name__)

LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)  # least to most severe (RFC 5424)
LOGGER = "sidehand"
DEFAULT_LEVEL: LoggingLevel = "info"


def level_of(event: Event) -> LoggingLevel | None:
    """How loud an event is as a log message (None: not logged: streamed text, file records)."""
    match event.kind:
        case "tool_result":
            return "warning" if event.error else "info"
        case "approval_requested":
            return "notice"
        case "turn_ended":
            return "error" if event.stop_reason == "error" else "notice"
        case "tool_call" | "agent_message" | "user_message" | "approval_granted" | "approval_rejected":
            return "info"
        case "state_changed" | "usage":
            return "debug"
        case _:
            return None


class LogLevel:
    """The level set with `logging/setLevel` (one per server: a client sets it for what it sees)."""

    def __init__(self) -> None:
        self.level: LoggingLevel = DEFAULT_LEVEL

    def allows(self, level: LoggingLevel) -> bool:
        return LEVELS.index(level) >= LEVELS.index(self.level)

    def register(self, server: MCPServer[Any]) -> None:
        async def set_level(ctx: ServerRequestContext[Any], params: SetLevelRequestParams) -> EmptyResult:
            self.level = params.level
            log.info("the client set the log level to %s", params.level)
            return EmptyResult()

        # MCPServer has no decorator for it; its low-level server declares the capability once a
        # handler is registered.
        server._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)


class TaskLogger:
    """Sends a task's events as log messages through one session, in order, until closed.
    `request_id`: the request they belong to (None: the connection's own channel)."""

    def __init__(
        self,
        task_id: str,
        session: ServerSession,
        level: LogLevel,
        request_id: RequestId | None,
        *,
        modern: bool = False,
    ) -> None:
        self.task_id = task_id
        self.session = session
        self.level = level
        self.request_id = request_id
        self.modern = modern  # 2026-07-28: the client chose the level with its request
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._sender = asyncio.ensure_future(self._send_all())

    def __call__(self, event: Event) -> None:
        if self._sender.done():
            return
        level = level_of(event)
        if level is not None and self._wanted(level):
            self._queue.put_nowait(event)

    def _wanted(self, level: LoggingLevel) -> bool:
        return self.modern or self.level.allows(level)

    async def _send_all(self) -> None:
        while (event := await self._queue.get()) is not None:
            level = level_of(event)
            assert level is not None
            if not self._wanted(level):  # the level may have changed meanwhile
                continue
            line = brief(event)
            data = {"task": self.task_id, "seq": line.seq, "kind": line.kind, "summary": line.summary}
            try:
                with warnings.catch_warnings():  # deprecated in 2026-07-28; still what clients show
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await self.session.send_log_message(
                        level, data, LOGGER, related_request_id=self.request_id
                    )
            except Exception:  # the client went away: stop sending, keep the task running
                log.debug("task %s: a log message could not be sent", self.task_id, exc_info=True)
                return

    async def aclose(self) -> None:
        """Send what is queued, then stop."""
        self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._sender), 5)
        self._sender.cancel()
