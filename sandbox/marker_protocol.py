"""The framing both persistent shells speak (the Docker one and the local baseline).

A request is shell text followed by a line that prints a marker: a newline, a random nonce, a status
word and a newline. Everything the shell prints before the marker is the request's output. The nonce
is fresh per request, so no output can fake it; the leading newline guarantees the marker starts a
line even when the output does not end with one (that newline is ours and is stripped again).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

Receive = Callable[[], Awaitable[bytes]]
Sink = Callable[[bytes], None]


class ShellEndedError(Exception):
    """The shell's output stream ended before the marker came: the shell exited or was killed."""


def new_nonce() -> str:
    return f"__sidehand_{secrets.token_hex(12)}"


def shell_quote(text: str) -> str:
    """Quote `text` as one POSIX shell word (single quotes; a quote inside becomes '\\'')."""
    return "'" + text.replace("'", "'\\''") + "'"


def framed(script: str, nonce: str, status: str = '"$?"') -> bytes:
    """`script`, then the marker line carrying `status` (a shell word, expanded after the script ran).

    `command printf` bypasses any function or alias the script may have defined named printf."""
    marker = f"command printf '\\n%s %s\\n' {nonce} {status}\n"
    return (script + "\n" + marker).encode("utf-8", "surrogateescape")


class MarkerReader:
    """Reads one shell's output up to each marker line.

    Bytes before the marker go to the caller's sink as they arrive (so memory stays bounded however
    much a command prints); bytes after it (late output of background jobs) are kept for the next read.
    `receive` must be cancel-safe: the reader's state is consistent at every await, so a read may be
    cancelled (timeout, interrupt) and resumed later without losing a byte."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._pending = bytearray()

    async def read_until(self, nonce: str, sink: Sink) -> str:
        """Feed output to `sink` until the marker with `nonce`; return the marker's status word."""
        prefix = b"\n" + nonce.encode() + b" "
        while True:
            start = self._pending.find(prefix)
            if start >= 0:
                end = self._pending.find(b"\n", start + len(prefix))
                if end >= 0:
                    if start:
                        sink(bytes(self._pending[:start]))
                    status = self._pending[start + len(prefix) : end].decode("ascii", "replace")
                    del self._pending[: end + 1]
                    return status
                self._flush(sink, start)
            else:
                # Hold back only what may be the start of a marker split across two chunks: output
                # is passed on as it comes (a call that returns early shows all of it so far).
                self._flush(sink, len(self._pending) - _marker_start(self._pending, prefix))
            chunk = await self._receive()
            if not chunk:
                self._flush(sink, len(self._pending))
                raise ShellEndedError("the shell's output ended before its end-of-command marker")
            self._pending += chunk

    def _flush(self, sink: Sink, count: int) -> None:
        if count > 0:
            sink(bytes(self._pending[:count]))
            del self._pending[:count]

    def reset(self) -> None:
        """Forget buffered output (the shell it came from is gone)."""
        self._pending.clear()


def _marker_start(pending: bytearray, prefix: bytes) -> int:
    """How many bytes at the end of `pending` may begin `prefix` (which starts with a newline)."""
    at = pending.find(b"\n", max(0, len(pending) - (len(prefix) - 1)))
    while at != -1:
        if prefix.startswith(pending[at:]):
            return len(pending) - at
        at = pending.find(b"\n", at + 1)
    return 0
