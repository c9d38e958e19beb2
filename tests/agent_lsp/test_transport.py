"""`sidehand lsp` (the real entry point, as a subprocess over pipes) given frames with a wrong
`Content-Length`: each malformed frame is followed by a valid request, which must be answered."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agent_lsp.transport import FrameReader

SERVER = [sys.executable, "-m", "sidehand", "lsp"]
TIMEOUT = 10


def body(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


def frame(data: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % (len(data) if length is None else length) + data


def request(msg_id: int, text: str = "x") -> bytes:
    """A request for a method the server does not have: it answers with an error for this id."""
    return body({"jsonrpc": "2.0", "id": msg_id, "method": "sidehand/nothing", "params": {"text": text}})


class Server:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdout is not None and proc.stdin is not None
        self.stdout = proc.stdout
        self.stdin = proc.stdin

    async def send(self, data: bytes) -> None:
        self.stdin.write(data)
        await self.stdin.drain()

    async def receive(self) -> dict[str, Any]:
        length = None
        while True:
            line = await asyncio.wait_for(self.stdout.readline(), TIMEOUT)
            assert line, "the server closed its output"
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif line == b"\r\n" and length is not None:
                message: dict[str, Any] = json.loads(await self.stdout.readexactly(length))
                return message

    async def answer_to(self, msg_id: int | None) -> dict[str, Any]:
        """The response with this id (notifications and other responses are skipped)."""
        while True:
            message = await self.receive()
            if "method" not in message and message.get("id") == msg_id:
                return message


@asynccontextmanager
async def sidehand_lsp(tmp_path: Path) -> AsyncIterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env.update(SIDEHAND_SESSIONS_DIR=str(tmp_path / "sessions"), SIDEHAND_CONFIG=str(tmp_path / "none.toml"))
    proc = await asyncio.create_subprocess_exec(
        *SERVER, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = Server(proc)
    try:
        await server.send(
            frame(body({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": {}}}))
        )
        assert "capabilities" in (await server.answer_to(0))["result"]
        await server.send(frame(body({"jsonrpc": "2.0", "method": "initialized", "params": {}})))
        yield server
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


MALFORMED = {
    "one byte short": frame(request(10), len(request(10)) - 1),
    "ten bytes too long": frame(request(10), len(request(10)) + 10),
    "characters, not bytes": frame(
        request(10, "héllo wörld — ✓"), len(request(10, "héllo wörld — ✓").decode())
    ),
    "a length of zero": frame(request(10), 0),
    "lower-case header, no space": b"content-length:%d\r\n\r\n" % len(request(10)) + request(10),
}


@pytest.mark.parametrize("sent", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_wrong_length_is_read_anyway_and_the_next_request_answered(
    tmp_path: Path, sent: bytes
) -> None:
    async with sidehand_lsp(tmp_path) as server:
        await server.send(sent)
        assert (await server.answer_to(10))["error"]["code"] == -32601  # method not found: it was read
        await server.send(frame(request(11)))
        assert (await server.answer_to(11))["error"]["code"] == -32601


GARBAGE = {
    "not JSON": frame(b"this is not json at all"),
    "JSON cut short for good": frame(b'{"jsonrpc": "2.0", "id": 5, "method": "sid'),
    "no header": b"hello there\r\n\r\n",
    "binary": frame(b"\xff\xfe\x00\x01" * 8),
}


@pytest.mark.parametrize("sent", GARBAGE.values(), ids=GARBAGE.keys())
async def test_unparsable_input_gets_a_parse_error_then_service_resumes(tmp_path: Path, sent: bytes) -> None:
    async with sidehand_lsp(tmp_path) as server:
        await server.send(sent)
        await server.send(frame(request(21)))
        error = await server.answer_to(None)
        assert error["error"]["code"] == -32700 and "Parse error" in error["error"]["message"]
        assert (await server.answer_to(21))["error"]["code"] == -32601
        server.proc.kill()
        assert server.proc.stderr is not None
        logged = (await server.proc.stderr.read()).decode()
        assert "unparsable input from the client" in logged


async def test_a_huge_announced_length_is_not_believed() -> None:
    chunks = [frame(b"{}", 10**12), frame(request(1))]
    errors: list[str] = []

    async def read() -> bytes:
        return chunks.pop(0) if chunks else b""

    reader = FrameReader(read, errors.append)
    assert json.loads(await reader.next_message() or b"")["id"] == 1
    assert errors and "too large" in errors[0]


@asynccontextmanager
async def tcp_server(tmp_path: Path, *args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env.update(SIDEHAND_SESSIONS_DIR=str(tmp_path / "sessions"), SIDEHAND_CONFIG=str(tmp_path / "none.toml"))
    proc = await asyncio.create_subprocess_exec(
        *SERVER, "--tcp", *args, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)).decode()
        assert "listening on" in line, line
        yield proc, int(line.rsplit(":", 1)[1])
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def tcp_initialize(port: int, options: dict[str, Any] | None) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        params = {"capabilities": {}, "initializationOptions": options}
        writer.write(frame(body({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})))
        await writer.drain()
        length = None
        while True:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            assert line, "closed"
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif line == b"\r\n" and length is not None:
                answer: dict[str, Any] = json.loads(await reader.readexactly(length))
                return answer
    finally:
        writer.close()


async def test_tcp_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *SERVER, "--tcp", "0.0.0.0:0", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2 and out == b"" and b"refusing to listen on 0.0.0.0 without a token" in err


async def test_tcp_with_a_token_refuses_clients_without_it(tmp_path: Path) -> None:
    async with tcp_server(tmp_path, "127.0.0.1:0", "--token", "lsp-s3cret-token") as (_, port):
        for options in (None, {"token": "wrong"}, {"token": 42}):
            refused = await tcp_initialize(port, options)
            assert refused["error"]["code"] == -32005 and "token" in refused["error"]["message"]
        answer = await tcp_initialize(port, {"token": "lsp-s3cret-token"})
        assert "capabilities" in answer["result"]


async def test_tcp_on_loopback_without_a_token(tmp_path: Path) -> None:
    async with tcp_server(tmp_path, "127.0.0.1:0") as (_, port):
        assert "capabilities" in (await tcp_initialize(port, None))["result"]


async def test_megabytes_without_a_header_are_dropped_as_they_come() -> None:
    chunks = [b"x" * 65536 for _ in range(40)] + [frame(request(2))]
    errors: list[str] = []

    async def read() -> bytes:
        return chunks.pop(0) if chunks else b""

    reader = FrameReader(read, errors.append)
    assert json.loads(await reader.next_message() or b"")["id"] == 2
    assert any("without a header" in e for e in errors) and len(reader.buffer) == 0
