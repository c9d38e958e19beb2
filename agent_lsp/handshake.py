"""Answer `initialize` before pygls is imported.

Importing pygls and lsprotocol takes most of a second here, and the core's models half a second
more; an editor waits on the `initialize` answer before it sends anything else. So `sidehand lsp`
over stdio reads the first message itself, answers an `initialize` at once with the capabilities
below, and only then imports the server. The bytes it read are replayed to pygls, which handles the
request as usual (workspace, client capabilities, our `initialize` handler) except that its reply
is not sent again: `SidehandProtocol` compares it with this one and logs any difference, and
tests/agent_lsp/test_handshake.py keeps the two equal.

Only the standard library here: this module runs before anything heavy is imported."""

import json
import os
from typing import Any, BinaryIO, NamedTuple, Protocol

from agent_lsp.methods import (
    CLIENT_METHODS,
    CODE_ACTION_KINDS,
    PROTOCOL_VERSION,
    RUN_CODE_ACTION,
)
from core.version import VERSION

# What pygls negotiates: the first of the client's position encodings it supports, else UTF-16.
POSITION_ENCODINGS = ("utf-8", "utf-16", "utf-32")
TEXT_DOCUMENT_SYNC_INCREMENTAL = 2
# Capability under `experimental` that tells a client which sidehand/* methods this server has.
EXPERIMENTAL = {"sidehand": {"protocolVersion": PROTOCOL_VERSION, "methods": list(CLIENT_METHODS)}}


class Reader(Protocol):
    def readline(self) -> bytes: ...

    def read(self, n: int, /) -> bytes: ...


class EarlyStart(NamedTuple):
    consumed: bytes  # every byte read from stdin, to replay to pygls
    answered_id: int | str | None  # the `initialize` request answered here, if any
    result: dict[str, Any] | None  # the result sent for it


def initialize_result(params: dict[str, Any]) -> dict[str, Any]:
    """The `initialize` result pygls computes for this server's features, as JSON."""
    client = params.get("capabilities") or {}
    return {
        "capabilities": {
            "positionEncoding": position_encoding(client),
            "textDocumentSync": text_document_sync(client),
            "codeActionProvider": {"codeActionKinds": list(CODE_ACTION_KINDS), "resolveProvider": True},
            "executeCommandProvider": {"commands": [RUN_CODE_ACTION]},
            "workspace": {
                "workspaceFolders": {"supported": True, "changeNotifications": True},
                "fileOperations": {},
            },
            "experimental": EXPERIMENTAL,
        },
        "serverInfo": {"name": "sidehand", "version": VERSION},
    }


def text_document_sync(client: dict[str, Any]) -> dict[str, Any]:
    """Incremental sync of open documents. pygls says `false` for willSave(WaitUntil) (we register
    neither) when the client states the capability, and leaves them out when it does not."""
    sync: dict[str, Any] = {"openClose": True, "change": TEXT_DOCUMENT_SYNC_INCREMENTAL}
    stated = _get(client, "textDocument", "synchronization")
    for key in ("willSave", "willSaveWaitUntil"):
        if isinstance(stated, dict) and stated.get(key) is not None:
            sync[key] = False
    sync["save"] = False
    return sync


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def position_encoding(capabilities: dict[str, Any]) -> str:
    offered = _get(capabilities, "general", "positionEncodings")
    for encoding in offered if isinstance(offered, list) else ():
        if encoding in POSITION_ENCODINGS:
            return str(encoding)
    return "utf-16"


def answer_initialize(stdin: Reader, stdout: BinaryIO) -> EarlyStart:
    """Read the first message; if it is a well-formed `initialize`, answer it on stdout. Anything
    else (another method, bad framing, bad JSON, end of input) is left for pygls to answer."""
    consumed = bytearray()
    length: int | None = None
    while True:
        line = stdin.readline()
        consumed += line
        if not line.endswith(b"\n"):  # end of input
            return EarlyStart(bytes(consumed), None, None)
        if not line.strip():
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value)
    if length is None:
        return EarlyStart(bytes(consumed), None, None)
    body = stdin.read(length)
    consumed += body
    request = _initialize_request(body)
    if request is None:
        return EarlyStart(bytes(consumed), None, None)
    msg_id, params = request
    result = initialize_result(params)
    reply = json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}).encode()
    stdout.write(b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply))
    stdout.flush()
    return EarlyStart(bytes(consumed), msg_id, result)


def _initialize_request(body: bytes) -> tuple[int | str, dict[str, Any]] | None:
    """(id, params) of an `initialize` request pygls would accept, else None."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return None
    msg_id, params = message.get("id"), message.get("params")
    if message.get("jsonrpc") != "2.0" or isinstance(msg_id, bool) or not isinstance(msg_id, int | str):
        return None
    if not isinstance(params, dict) or not isinstance(params.get("capabilities"), dict):
        return None
    for key, kind in (("processId", int), ("rootUri", str), ("rootPath", str), ("workspaceFolders", list)):
        if params.get(key) is not None and not isinstance(params[key], kind):
            return None
    return msg_id, params


class RawStdin:
    """stdin read straight from its file descriptor (`readline`, `read`): no Python buffer reads
    ahead, so what this module does not consume is still in the pipe for the server's reader
    (agent_lsp.transport), and no thread later blocked on stdin holds a lock the exit needs."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd

    def readline(self) -> bytes:
        line = bytearray()
        while not line.endswith(b"\n"):
            byte = os.read(self.fd, 1)
            if not byte:
                break
            line += byte
        return bytes(line)

    def read(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = os.read(self.fd, n - len(data))
            if not chunk:
                break
            data += chunk
        return bytes(data)
