"""Assembles the language server: its state (`agent_lsp.server`) and each feature's handlers."""

from __future__ import annotations

from collections.abc import Callable

from agent_lsp import (
    buffers,
    change_review,
    checkpoints,
    code_actions,
    handshake,
    lifecycle,
    sandbox_status,
    sessions,
)
from agent_lsp.server import SidehandServer
from core.redaction import RedactSecrets
from core.sessions import ManagerFactory


def build_server(
    manager_factory: ManagerFactory,
    *,
    redact: RedactSecrets,
    warm_up: Callable[[], object] | None = None,
    early: handshake.EarlyStart | None = None,
) -> SidehandServer:
    server = SidehandServer(manager_factory, redact=redact, warm_up=warm_up, early=early)
    lifecycle.register(server, sandbox_status.register(server))
    buffers.register(server)
    hub = sessions.register(server)
    review = change_review.register(server)
    code_actions.register(server, hub, review)
    checkpoints.register(server, hub)
    return server
