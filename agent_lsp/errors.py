"""The core's refusals as JSON-RPC errors: one table from error type to code (docs/protocol.md)."""

from __future__ import annotations

from pygls.exceptions import JsonRpcException

from agent_lsp import methods as m
from core.errors import (
    ConfigError,
    ConflictError,
    SessionBusyError,
    SidehandError,
    UnknownSessionError,
)

# Checked in order: the first type the error is an instance of gives its code.
ERROR_CODES: tuple[tuple[type[SidehandError], int], ...] = (
    (ConfigError, m.CONFIGURATION),
    (UnknownSessionError, m.UNKNOWN_SESSION),
    (SessionBusyError, m.SESSION_BUSY),
    (ConflictError, m.CONFLICT),
)


def rpc_error(exc: SidehandError) -> JsonRpcException:
    """The JSON-RPC error for a core refusal (the message says what to do)."""
    code = next((code for kind, code in ERROR_CODES if isinstance(exc, kind)), m.REQUEST_FAILED)
    return JsonRpcException(code=code, message=str(exc))


def invalid_params(message: str) -> JsonRpcException:
    return JsonRpcException(code=m.INVALID_PARAMS, message=message)


def conflict(message: str) -> JsonRpcException:
    return JsonRpcException(code=m.CONFLICT, message=message)
