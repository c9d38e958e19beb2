"""Core refusals map to JSON-RPC error codes by their type (one table), never by message text."""

from __future__ import annotations

import pytest

from agent_lsp import methods as m
from agent_lsp.errors import rpc_error
from core.errors import (
    ConfigError,
    ConflictError,
    SandboxError,
    SessionBusyError,
    SessionError,
    SidehandError,
    UnknownSessionError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("no model"), m.CONFIGURATION),
        (UnknownSessionError("whatever the words"), m.UNKNOWN_SESSION),
        (SessionBusyError("whatever the words"), m.SESSION_BUSY),
        (ConflictError("whatever the words"), m.CONFLICT),
        (SessionError("unknown session, running a turn"), m.REQUEST_FAILED),  # words decide nothing
        (SandboxError("no engine"), m.REQUEST_FAILED),
    ],
)
def test_error_codes_come_from_the_type(error: SidehandError, code: int) -> None:
    rpc = rpc_error(error)
    assert rpc.code == code and rpc.message == str(error)
