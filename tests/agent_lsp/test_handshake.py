"""`sidehand lsp` answers `initialize` before pygls is imported (agent_lsp.handshake): the early
answer must be the one pygls itself computes, the bytes read must reach pygls unchanged, and the
path up to the answer must import nothing heavy."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_lsp import handshake
from agent_lsp.build import build_server
from core.redaction import RedactSecrets
from core.sessions import SessionManager

CLIENTS: dict[str, dict[str, Any]] = {
    "no capabilities": {},
    "utf-8 preferred": {"general": {"positionEncodings": ["utf-8", "utf-16"]}},
    "utf-32 only": {"general": {"positionEncodings": ["utf-32"]}},
    "unknown encodings": {"general": {"positionEncodings": ["utf-7"]}},
    "willSave stated false": {"textDocument": {"synchronization": {"willSave": False, "didSave": True}}},
    "sync without willSave": {"textDocument": {"synchronization": {"dynamicRegistration": True}}},
    "an editor's set": {
        "workspace": {
            "applyEdit": True,
            "workspaceFolders": True,
            "workspaceEdit": {"changeAnnotationSupport": {}},
        },
        "textDocument": {
            "synchronization": {"willSave": True, "willSaveWaitUntil": True, "didSave": True},
            "codeAction": {"resolveSupport": {"properties": ["command"]}, "dataSupport": True},
            "rename": {"prepareSupport": True},
        },
        "notebookDocument": {"synchronization": {}},
        "window": {"workDoneProgress": True},
        "general": {"positionEncodings": ["utf-16"]},
    },
}


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def initialize(capabilities: dict[str, Any], msg_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "initialize",
        "params": {"processId": None, "rootUri": None, "capabilities": capabilities},
    }


class Sink:
    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def close(self) -> None:
        pass


def answers(chunks: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(chunk.split(b"\r\n\r\n", 1)[1]) for chunk in chunks]


def no_sessions(settings: object) -> SessionManager:
    raise AssertionError("the handshake starts no session")


async def pygls_answer(message: dict[str, Any], early: handshake.EarlyStart | None = None) -> list[bytes]:
    """What the pygls server writes for `message` (with the early answer, if any, already sent)."""
    server = build_server(no_sessions, redact=RedactSecrets(), early=early)
    sink = Sink()
    server.protocol.set_writer(sink)
    server.protocol.handle_message(server.protocol.structure_message(message))
    await asyncio.sleep(0)
    return sink.out


@pytest.mark.parametrize("capabilities", CLIENTS.values(), ids=CLIENTS.keys())
async def test_the_early_answer_is_the_one_pygls_computes(capabilities: dict[str, Any]) -> None:
    stdout = io.BytesIO()
    early = handshake.answer_initialize(io.BytesIO(frame(initialize(capabilities))), stdout)
    assert early.answered_id == 1
    [sent] = answers([stdout.getvalue()])
    [computed] = answers(await pygls_answer(initialize(capabilities)))
    assert sent == computed


async def test_pygls_does_not_answer_again_and_a_difference_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = initialize({})
    consumed = frame(message)
    early = handshake.EarlyStart(consumed, 1, handshake.initialize_result(message["params"]))
    with caplog.at_level(logging.ERROR):
        assert await pygls_answer(message, early) == []
    assert not caplog.records

    stale = handshake.EarlyStart(consumed, 1, {"capabilities": {}})
    with caplog.at_level(logging.ERROR):
        assert await pygls_answer(message, stale) == []
    assert "update agent_lsp/handshake.py" in caplog.text


@pytest.mark.parametrize(
    "raw",
    [
        frame({"jsonrpc": "2.0", "id": 1, "method": "sidehand/session/list", "params": {}}),
        frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None}}),
        frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": [], "x": 1}}),
        frame({"jsonrpc": "2.0", "id": True, "method": "initialize", "params": {"capabilities": {}}}),
        frame({"jsonrpc": "2.0", "method": "initialize", "params": {"capabilities": {}}}),
        b"Content-Length: 5\r\n\r\n{nope",
        b"Content-Type: x\r\n\r\n{}",
        b'Content-Length: 40\r\n\r\n{"jsonrpc"',
        b"Content-Le",
        b"",
    ],
    ids=[
        "another method",
        "no capabilities",
        "capabilities not an object",
        "boolean id",
        "a notification",
        "bad JSON",
        "no length",
        "cut short",
        "cut in the header",
        "empty",
    ],
)
def test_anything_but_an_initialize_is_left_to_pygls_byte_for_byte(raw: bytes) -> None:
    stdout = io.BytesIO()
    after = frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    early, rest = _through_a_pipe(raw + after, stdout)
    assert early.answered_id is None
    assert stdout.getvalue() == b""
    assert early.consumed + rest == raw + after  # the server's reader gets every byte, in order


def test_the_server_reader_gets_the_initialize_then_the_rest() -> None:
    first = frame(initialize({}))
    after = frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    early, rest = _through_a_pipe(first + after, io.BytesIO())
    assert early.consumed == first  # nothing read ahead: the rest is still in the pipe
    assert rest == after


def _through_a_pipe(data: bytes, stdout: io.BytesIO) -> tuple[handshake.EarlyStart, bytes]:
    """Answer from a real pipe (what stdin is): what the handshake consumed, and what it left."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
        os.close(write_end)
        early = handshake.answer_initialize(handshake.RawStdin(read_end), stdout)
        rest = b""
        while chunk := os.read(read_end, 65536):
            rest += chunk
        return early, rest
    finally:
        os.close(read_end)


def test_nothing_heavy_is_imported_before_the_answer() -> None:
    """The answer waits only on what `sidehand lsp` imports before it: no pygls, lsprotocol,
    pydantic, asyncio or core (those cost most of two seconds here)."""
    code = (
        "import io, sys\n"
        "import sidehand.cli, agent_lsp.cli\n"
        "from agent_lsp.handshake import answer_initialize\n"
        f"early = answer_initialize(io.BytesIO({frame(initialize({}))!r}), io.BytesIO())\n"
        "assert early.answered_id == 1\n"
        "heavy = ('pygls', 'lsprotocol', 'pydantic', 'asyncio', 'core.config', 'core.events', 'litellm')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


async def test_over_tcp_pygls_answers_the_initialize_itself(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SIDEHAND_SESSIONS_DIR": str(tmp_path / "sessions")}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_lsp.cli", "--tcp", f"127.0.0.1:{port}", env=env
    )
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    await asyncio.sleep(0.05)  # not listening yet
            message = initialize({"general": {"positionEncodings": ["utf-8"]}})
            writer.write(frame(message))
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            answer = json.loads(await reader.readexactly(length))
            assert answer["id"] == 1
            assert answer["result"] == handshake.initialize_result(message["params"])
            writer.close()
    finally:
        server.terminate()
        await server.wait()
