"""initialize / initialized / shutdown, and SIGTERM: settings from the client, their problems shown,
the session machinery warmed up in the background, what a killed process left behind settled,
everything closed at shutdown (and on SIGTERM, within seconds)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from lsprotocol import types

from agent_lsp.sandbox_status import SandboxCheck
from agent_lsp.server import SidehandServer

log = logging.getLogger(__name__)

SIGTERM_STATUS = 128 + signal.SIGTERM


def register(server: SidehandServer, sandbox_check: SandboxCheck) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: SidehandServer, params: types.InitializeParams) -> None:
        ls.configure(params)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: _on_sigterm(ls))

    @server.feature(types.INITIALIZED)
    def initialized(ls: SidehandServer, params: types.InitializedParams) -> None:
        ls.load_settings()
        for problem in ls.settings_problems:
            ls.show(types.MessageType.Error, f"Sidehand settings: {problem}")
        warming = ls.warm_up() if ls.warm_up is not None else None
        ls.spawn(recover(warming, sandbox_check))

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: SidehandServer, params: None) -> None:
        await ls.aclose()


async def recover(warming: object, sandbox_check: SandboxCheck) -> None:
    """Settle what a killed Sidehand process left (its sandboxes, its open sessions), once the
    session machinery is loaded (off the event loop: the warm-up thread loads it): the sandbox
    check does it, tells the client whether the Docker engine answered, and if it did has a
    sandbox of the workspace ready."""
    if isinstance(warming, threading.Thread):
        await asyncio.to_thread(warming.join)
    await sandbox_check.run()


_terminating: list[asyncio.Task[None]] = []  # not one of the server's tasks: closing cancels those


def _on_sigterm(ls: SidehandServer) -> None:
    if not _terminating:
        _terminating.append(asyncio.ensure_future(terminate(ls)))


async def terminate(ls: SidehandServer) -> None:
    """SIGTERM (a shutdown, a Spot interruption): running turns end as interrupted and are logged,
    sandboxes are removed, then the process exits with 143. The reader of stdin is a daemon
    thread reading the descriptor itself (agent_lsp.transport), so the exit is a normal one."""
    log.warning("SIGTERM: interrupting running turns and removing sandboxes")
    try:
        await asyncio.wait_for(ls.aclose(), 20)
    finally:
        raise SystemExit(SIGTERM_STATUS)  # ends the event loop; `sidehand lsp` exits with it
