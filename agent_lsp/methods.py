"""The `sidehand/*` protocol's names and error codes: plain constants, importable before pygls and
pydantic (the early `initialize` answer in `agent_lsp.handshake` lists them)."""

PROTOCOL_VERSION = 1

SESSION_NEW = "sidehand/session/new"
SESSION_PROMPT = "sidehand/session/prompt"
SESSION_CANCEL = "sidehand/session/cancel"
SESSION_LIST = "sidehand/session/list"
SESSION_LOAD = "sidehand/session/load"
SESSION_FORK = "sidehand/session/fork"
SESSION_CLOSE = "sidehand/session/close"
SESSION_UPDATE = "sidehand/session/update"  # server -> client notification
REQUEST_PERMISSION = "sidehand/session/requestPermission"  # server -> client request
CHANGES_LIST = "sidehand/changes/list"
CHANGES_ACCEPT = "sidehand/changes/accept"
CHANGES_REJECT = "sidehand/changes/reject"
CHECKPOINTS_LIST = "sidehand/checkpoints/list"
CHECKPOINTS_RESTORE = "sidehand/checkpoints/restore"
SANDBOX_CHECK = "sidehand/sandbox/check"
SANDBOX_STATUS = "sidehand/sandbox/status"  # server -> client notification

CLIENT_METHODS = (
    SESSION_NEW,
    SESSION_PROMPT,
    SESSION_CANCEL,
    SESSION_LIST,
    SESSION_LOAD,
    SESSION_FORK,
    SESSION_CLOSE,
    CHANGES_LIST,
    CHANGES_ACCEPT,
    CHANGES_REJECT,
    CHECKPOINTS_LIST,
    CHECKPOINTS_RESTORE,
    SANDBOX_CHECK,
)
RUN_CODE_ACTION = "sidehand.runCodeAction"
# The code action kinds the server offers (LSP's quickfix and refactor.rewrite, and our own).
CODE_ACTION_KINDS = ("quickfix", "refactor.rewrite", "sidehand")

# JSON-RPC error codes. -32601 / -32602 are the standard ones; the server range holds ours.
INVALID_PARAMS = -32602
UNKNOWN_SESSION = -32001
SESSION_BUSY = -32002
CONFIGURATION = -32003
CONFLICT = -32004
UNAUTHORIZED = -32005  # a TCP connection without the server's token
REQUEST_FAILED = -32803  # LSP RequestFailed: anything else the core refused
