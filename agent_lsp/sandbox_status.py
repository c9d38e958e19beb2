"""Whether sessions can have a sandbox, told to the client before the user asks for one.

Once the client is initialized, the server settles what a killed process left behind
(`SessionManager.recover`), which contacts the Docker engine first to remove that process's
sandboxes. That contact is the check: a `SandboxError` from it (no socket, permission denied,
DOCKER_HOST unreachable) makes the status `unavailable`, with the engine's error; success makes it
`ready`, and the workspace's sandboxes are then prepared (`SessionManager.prewarm`). Each outcome
is sent as `sidehand/sandbox/status`; `sidehand/sandbox/check` runs the check again (the panel's
Retry) and answers the status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent_lsp import protocol as p
from agent_lsp.server import SidehandServer
from core.errors import SandboxError

log = logging.getLogger(__name__)

READY = "ready"
UNAVAILABLE = "unavailable"


class SandboxCheck:
    def __init__(self, server: SidehandServer) -> None:
        self.server = server
        self._lock = asyncio.Lock()  # one check at a time: each settles the store's sessions
        self.status: dict[str, Any] | None = None  # the last outcome (None: not known yet)

    async def run(self) -> dict[str, Any] | None:
        """Contact the engine (by settling what a stopped process left), report the outcome, and
        prepare the workspace's sandboxes when it answered. None: the check itself failed."""
        ls = self.server
        async with self._lock:
            try:
                await ls.manager().recover()
            except SandboxError as exc:
                message = ls.redact.redactor(str(exc))
                log.warning("sessions cannot have a sandbox: %s", message)
                status: dict[str, Any] = {"state": UNAVAILABLE, "message": message}
            except Exception:
                log.warning("could not settle what a stopped process left behind", exc_info=True)
                return self.status
            else:
                status = {"state": READY, "message": None}
            self.status = status
            if ls.sidehand_client:
                ls.protocol.notify(p.SANDBOX_STATUS, status)
        if status["state"] == READY and (root := ls.workspace_root()) is not None:
            ls.spawn(ls.manager().prewarm(root))  # the first session and code actions start at once
        return status


def register(server: SidehandServer) -> SandboxCheck:
    """`sidehand/sandbox/check`. Returns the check that `initialized` runs first."""
    check = SandboxCheck(server)

    @server.feature(p.SANDBOX_CHECK)
    async def sandbox_check(ls: SidehandServer, params: Any) -> dict[str, Any] | None:
        return await check.run()

    return check
