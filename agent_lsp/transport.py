"""Reading LSP messages off a byte stream, robust to a wrong `Content-Length`.

pygls's reader believes the header: one byte short (or a length counted in characters instead of
UTF-8 bytes, a common client bug) and the rest of the body is glued to the next header, which it
then never recognizes again; too long and it waits for bytes that never come. Either way the
server stays alive and deaf. Here a body is a JSON value: reading stops as soon as one is complete
(a length too long), and reads on until one is (a length too short); the next header is looked for
wherever it starts, even mid-line. What cannot be read as JSON is answered with a JSON-RPC parse
error (id null) and logged, and reading resumes at the next header.

`serve_stdio` runs a pygls server on stdin/stdout with this reader (pygls's `start_io`, whose
reading loop this replaces); `serve_stream` one TCP connection."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from agent_lsp.methods import UNAUTHORIZED

log = logging.getLogger(__name__)

HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\d+)", re.IGNORECASE)
GRACE = 0.5  # seconds to wait for the rest of a body that is not JSON yet before calling it garbage
MAX_BODY = 256 * 1024 * 1024  # a larger Content-Length is not believed
MAX_GARBAGE = 1024 * 1024  # bytes kept while looking for the next header
PARSE_ERROR = -32700
CHUNK = 65536

ReadChunk = Callable[[], Awaitable[bytes]]  # b"" at the end of input


@dataclass
class FrameReader:
    """Messages (parsed JSON) from a byte stream. `on_garbage` is told about bytes that were not a
    message (for the parse-error answer)."""

    read_chunk: ReadChunk
    on_garbage: Callable[[str], None]
    buffer: bytearray = field(default_factory=bytearray)
    eof: bool = False
    _decoder: json.JSONDecoder = field(default_factory=json.JSONDecoder)

    async def next_message(self) -> bytes | None:
        """The next message's JSON text; None at the end of input."""
        while True:
            length = await self._header()
            if length is None:
                return None
            body = await self._body(length)
            if body is not None:
                return body

    # ---- headers -------------------------------------------------------------------------
    async def _header(self) -> int | None:
        """Skip to the next `Content-Length` header (wherever it starts), read the header block;
        returns the length (None: end of input)."""
        while True:
            match = HEADER.search(self.buffer)
            end = self.buffer.find(b"\r\n\r\n", match.start()) if match else -1
            if match is not None and end >= 0:
                skipped = bytes(self.buffer[: match.start()]).strip()
                if skipped:
                    self.on_garbage(f"{len(skipped)} bytes before a header were not a message")
                length = int(match[1])
                del self.buffer[: end + 4]
                if length > MAX_BODY:
                    self.on_garbage(f"Content-Length {length} is too large")
                    continue
                return length
            if self.eof:
                if bytes(self.buffer).strip():
                    self.on_garbage("the input ended inside a message")
                return None
            if match is None and len(self.buffer) > MAX_GARBAGE:  # keep the search cheap
                self.on_garbage(f"{len(self.buffer)} bytes without a header")
                del self.buffer[: len(self.buffer) - 64]  # what may be the start of a header
            await self._fill()

    # ---- bodies --------------------------------------------------------------------------
    async def _body(self, length: int) -> bytes | None:
        """The message the header announced, however wrong its length was (None: garbage)."""
        while len(self.buffer) < length and not self.eof:
            # A body that ends where the input stops (the client waits for our answer) may be
            # whole already: a length too long. Only then is it worth trying to parse.
            if bytes(self.buffer[-64:]).rstrip().endswith((b"}", b"]")):
                complete = self._complete_value()
                if complete is not None:
                    return self._take(complete, length)
            await self._fill()
        complete = self._complete_value()
        if complete is not None:
            return self._take(complete, length)
        # Not JSON within `length` bytes: too short a length, or garbage. Read on (briefly) until
        # the JSON is complete or the next header shows up.
        while not self.eof:
            if HEADER.search(self.buffer, length) is not None:
                break
            try:
                await asyncio.wait_for(self._fill(), GRACE)
            except TimeoutError:
                break
            complete = self._complete_value()
            if complete is not None:
                return self._take(complete, length)
        header = HEADER.search(self.buffer, 1)
        cut = header.start() if header is not None else len(self.buffer)
        self.on_garbage(f"a body of {length} announced bytes is not JSON")
        del self.buffer[:cut]
        return None

    def _complete_value(self) -> int | None:
        """Where the JSON value that starts the buffer ends, if it is complete."""
        data = bytes(self.buffer).lstrip()
        if not data.startswith((b"{", b"[")) or (b"}" not in data and b"]" not in data):
            return None
        stripped = len(self.buffer) - len(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:  # a character cut at the end: the rest is to come
            text = data[: exc.start].decode("utf-8") if exc.start else ""
        try:
            _, end = self._decoder.raw_decode(text)
        except ValueError:
            return None
        return stripped + len(text[:end].encode("utf-8"))

    def _take(self, end: int, length: int) -> bytes:
        if end != length:
            log.warning(
                "a message's Content-Length was %d, its body %d bytes: read it anyway (a client bug)",
                length,
                end,
            )
        body = bytes(self.buffer[:end])
        del self.buffer[:end]
        return body

    async def _fill(self) -> None:
        chunk = await self.read_chunk()
        if not chunk:
            self.eof = True
        self.buffer += chunk


def answer_parse_error(server: LanguageServer, detail: str) -> None:
    log.error("unparsable input from the client: %s", detail)
    error = {"code": PARSE_ERROR, "message": f"Parse error: {detail}"}
    # pygls has no public call to send a response without a request id.
    server.protocol._send_data({"jsonrpc": "2.0", "id": None, "error": error})


async def dispatch(server: LanguageServer, reader: FrameReader, stop: threading.Event) -> None:
    """Hand every message to pygls until the input ends or the server stops."""
    protocol = server.protocol
    while not stop.is_set():
        body = await reader.next_message()
        if body is None:
            break
        try:
            protocol.handle_message(json.loads(body, object_hook=protocol.structure_message))
        except Exception:  # a message pygls cannot take never stops the server
            log.exception("unable to handle a message")


def fd_chunks(first: bytes, fd: int) -> ReadChunk:
    """Chunks of input: `first` (what the handshake read), then what the descriptor has, read on
    one daemon thread (a read blocked on stdin must never keep the process from exiting)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    if first:
        queue.put_nowait(first)
    started = False

    def pump(loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data = os.read(fd, CHUNK)
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(queue.put_nowait, data)
            except RuntimeError:  # the loop is closed: the server stopped
                return
            if not data:
                return

    async def read() -> bytes:
        nonlocal started
        if not started:
            started = True
            threading.Thread(
                target=pump, args=(asyncio.get_running_loop(),), name="sidehand-stdin", daemon=True
            ).start()
        return await queue.get()

    return read


def serve_stdio(
    server: LanguageServer, first: bytes = b"", fd: int = 0, stdout: BinaryIO | None = None
) -> int:
    """pygls's `start_io`, reading with `FrameReader`. Returns the exit status (`exit` after
    `shutdown`: 0, without: 1; SIGTERM: 143)."""
    stop = threading.Event()
    server._stop_event = stop
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    reader = FrameReader(fd_chunks(first, fd), lambda detail: answer_parse_error(server, detail))
    status = 0
    try:
        asyncio.run(dispatch(server, reader, stop))
    except BrokenPipeError:
        log.error("the connection to the client is lost: stopping")
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # `exit`, or SIGTERM's end (agent_lsp.lifecycle)
        status = exc.code if isinstance(exc.code, int) else 0
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
    return status


# ---- TCP -----------------------------------------------------------------------------------------
TOKEN_OPTION = "token"  # initializationOptions.token: how a TCP client presents the server's token


def authorized(first: bytes, token: str | None) -> tuple[bool, object]:
    """Whether the connection's first message is an `initialize` carrying the token (always, with
    no token set). Returns it with the request id (to answer a refusal)."""
    try:
        message = json.loads(first)
    except ValueError:
        return False, None
    msg_id = message.get("id") if isinstance(message, dict) else None
    if token is None:
        return True, msg_id
    params = message.get("params") if isinstance(message, dict) else None
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.get(TOKEN_OPTION) if isinstance(options, dict) else None
    if message.get("method") != "initialize" or not isinstance(given, str):
        return False, msg_id
    return hmac.compare_digest(given.encode(), token.encode()), msg_id


def serve_tcp(server: LanguageServer, host: str, port: int, token: str | None) -> int:
    """One client over TCP (as pygls's `start_tcp`), reading with `FrameReader`. With a token, a
    connection whose first message is not an `initialize` with `initializationOptions.token` set
    to it is answered with an error and closed; the server keeps listening for the right one."""
    stop = threading.Event()
    server._stop_event = stop
    done: asyncio.Future[None] | None = None

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def read() -> bytes:
            return await reader.read(CHUNK)

        frames = FrameReader(read, lambda detail: answer_parse_error(server, detail))
        first = await frames.next_message()
        ok, msg_id = authorized(first or b"", token)
        if first is None or not ok:
            log.warning("refused a TCP connection from %s: no valid token", writer.get_extra_info("peername"))
            refusal = {
                "code": UNAUTHORIZED,
                "message": f"unauthorized: pass the server's token as initializationOptions.{TOKEN_OPTION}",
            }
            data = json.dumps({"jsonrpc": "2.0", "id": msg_id, "error": refusal}).encode()
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        server.protocol.set_writer(writer)
        frames.buffer[:0] = frame_bytes(first)
        try:
            await dispatch(server, frames, stop)
        finally:
            if done is not None and not done.done():
                done.set_result(None)

    async def main() -> None:
        nonlocal done
        done = asyncio.get_running_loop().create_future()
        listening = await asyncio.start_server(connection, host, port)
        bound = listening.sockets[0].getsockname()
        sys.stderr.write(f"sidehand lsp: listening on {bound[0]}:{bound[1]}\n")
        sys.stderr.flush()
        async with listening:
            await done

    status = 0
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 0
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
    return status


def frame_bytes(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
