"""A long-lived process in a container, attached over the Docker exec socket.

Only creating and starting the exec go through the (blocking) docker SDK, on the sandbox's thread
pool; after the HTTP upgrade the socket is handed to asyncio, so reading and writing a command costs
no thread hop and a waiting read holds no thread however long a command runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import struct
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

from core.errors import SandboxError
from sandbox.container import docker_errors
from sandbox.shell_scripts import STOP_SCRIPT, StopMode

log = logging.getLogger(__name__)

T = TypeVar("T")

# Starts bash when the image has it (nicer for agents: arrays, [[ ]], pipefail), else the POSIX sh.
PREFER_BASH = ["/bin/sh", "-c", "command -v bash >/dev/null 2>&1 && exec bash --noprofile --norc; exec sh"]
POSIX_SH = ["/bin/sh"]
_HEADER = struct.Struct(">BxxxL")


class StreamDemuxer:
    """Strips Docker's stream framing (8-byte header: stream id, 3 zero bytes, big-endian length).

    stdout and stderr payloads come out merged in arrival order. Payload bytes are passed on as they
    arrive, before their frame is complete, so a large frame never has to be held whole."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._left_in_frame = 0

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        view, i = memoryview(data), 0
        while i < len(view):
            if self._left_in_frame == 0:
                need = _HEADER.size - len(self._header)
                self._header += view[i : i + need]
                i += need
                if len(self._header) == _HEADER.size:
                    self._left_in_frame = _HEADER.unpack(self._header)[1]
                    self._header.clear()
            else:
                take = min(self._left_in_frame, len(view) - i)
                out += view[i : i + take]
                i += take
                self._left_in_frame -= take
        return bytes(out)


class DockerExec:
    """Runs blocking docker SDK calls for one container on a dedicated thread pool."""

    def __init__(self, api: Any, container_id: str, executor: Executor) -> None:
        self.api = api
        self.container_id = container_id
        self.executor = executor

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def run_script(self, script: str, *args: str) -> bytes:
        """Run a short sh script to completion in a fresh exec (for control actions, not commands)."""
        argv = ["/bin/sh", "-c", script, "sidehand", *args]
        with docker_errors("run a control script in the sandbox"):
            exec_id = await self.call(self.api.exec_create, self.container_id, argv, stdin=False, tty=False)
            output: bytes = await self.call(self.api.exec_start, exec_id)
        return output


class ExecShellProcess:
    """A shell in an exec with stdin attached; implements sandbox.persistent_shell.ShellProcess."""

    def __init__(
        self,
        docker: DockerExec,
        exec_id: str,
        raw: Any,
        link: _Link,
    ) -> None:
        self._docker = docker
        self._exec_id = exec_id
        self._raw = raw  # the SDK's socket object; holds the HTTP response open
        self._link = link
        self._demuxer = StreamDemuxer()
        self._ended = False

    @classmethod
    async def open(
        cls,
        docker: DockerExec,
        argv: Sequence[str],
        *,
        workdir: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> ExecShellProcess:
        with docker_errors("start a shell in the sandbox"):
            return await cls._open(docker, argv, workdir, environment)

    @classmethod
    async def _open(
        cls,
        docker: DockerExec,
        argv: Sequence[str],
        workdir: str | None,
        environment: Mapping[str, str] | None,
    ) -> ExecShellProcess:
        exec_id = await docker.call(
            docker.api.exec_create,
            docker.container_id,
            list(argv),
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            workdir=workdir,
            environment=dict(environment) if environment else None,
        )
        if str(docker.api.base_url).startswith("https://"):
            # TLS: attached with asyncio's own TLS (an SSLSocket cannot be read on one thread while
            # written on another; the SDK's would have to be).
            return cls(docker, exec_id, None, await _Link.attach_tls(docker.api, exec_id))
        attach = asyncio.ensure_future(docker.call(docker.api.exec_start, exec_id, socket=True))
        try:
            raw = await asyncio.shield(attach)
        except asyncio.CancelledError:
            # The worker thread finishes the attach regardless: close the socket it will return.
            attach.add_done_callback(_close_attached)
            raise
        try:
            link = await _Link.open(raw, docker.executor)
        except BaseException:
            _close_raw(raw)
            raise
        return cls(docker, exec_id, raw, link)

    async def send(self, data: bytes) -> None:
        await self._link.send(data)

    async def receive(self) -> bytes:
        while not self._ended:
            data = await self._link.receive()  # the only await: cancel-safe
            if not data:
                self._ended = True
                break
            payload = self._demuxer.feed(data)
            if payload:
                return payload
        return b""

    async def stop(self, shell_pid: int, mode: StopMode, jobs_file: str) -> None:
        await self._docker.run_script(STOP_SCRIPT, str(shell_pid), mode, jobs_file)

    async def exit_code(self) -> int | None:
        # The output can end a moment before the engine records the exit.
        for _ in range(50):
            try:
                with docker_errors("read the shell's exit status"):
                    state = await self._docker.call(self._docker.api.exec_inspect, self._exec_id)
            except SandboxError as exc:  # the container is gone: the status is too
                log.debug("%s", exc)
                return None
            if not state.get("Running"):
                code = state.get("ExitCode")
                return int(code) if code is not None else None
            await asyncio.sleep(0.02)
        return None

    async def close(self) -> None:
        # Closing stdin ends a shell that is idle; one that is busy is killed by the caller's
        # kill_shell or with the container.
        await self._link.close()
        if self._raw is not None:
            _close_raw(self._raw)


class _Link:
    """The attached exec's byte stream. A plain socket (unix, tcp) is driven by asyncio itself, and
    so is TLS (`attach_tls`); another (the ssh client's tunnel) gets a reader thread, and its
    writes go through the executor."""

    def __init__(self) -> None:
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sock: Any = None
        self._executor: Executor | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    @classmethod
    async def attach_tls(cls, api: Any, exec_id: str) -> _Link:
        """Start the exec over a TLS connection of our own, as the SDK's exec_start(socket=True)
        does: the same request, answered by a switch to the raw stream."""
        url = urllib.parse.urlsplit(str(api.base_url))
        context = ssl.create_default_context(cafile=api.verify if isinstance(api.verify, str) else None)
        if api.verify is False:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if api.cert:
            cert, key = api.cert if isinstance(api.cert, tuple) else (api.cert, None)
            context.load_cert_chain(cert, key)
        reader, writer = await asyncio.open_connection(
            url.hostname, url.port or 2376, ssl=context, limit=1 << 20
        )
        body = json.dumps({"Tty": False, "Detach": False}).encode()
        path = urllib.parse.quote(f"/v{api._version}/exec/{_exec_key(exec_id)}/start", safe="/:")
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: sidehand\r\n"
            "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            writer.close()
            raise SandboxError(f"the Docker engine did not answer the attach: {exc}") from exc
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if status.split()[1:2] not in (["101"], ["200"]):
            writer.close()
            raise SandboxError(f"the Docker engine refused to attach to the sandbox's shell: {status}")
        link = cls()
        link._reader, link._writer = reader, writer
        return link

    @classmethod
    async def open(cls, raw: Any, executor: Executor) -> _Link:
        link = cls()
        sock = getattr(raw, "_sock", raw)  # the SDK's SocketIO wraps the socket
        if type(sock) is socket.socket:  # a subclass (an SSLSocket, the ssh client's) is not plain
            link._reader, link._writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
            return link
        if not callable(getattr(sock, "recv", None)) or not callable(getattr(sock, "sendall", None)):
            raise SandboxError(f"cannot attach to the sandbox over a {type(sock).__name__} connection")
        if callable(getattr(sock, "settimeout", None)):
            sock.settimeout(None)
        link._sock, link._executor = sock, executor
        loop = asyncio.get_running_loop()
        threading.Thread(target=link._pump, args=(loop,), name="sidehand-exec-reader", daemon=True).start()
        return link

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except (OSError, ValueError):
                data = b""
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, data)
            except RuntimeError:  # the loop is closed
                return
            if not data:
                return

    async def send(self, data: bytes) -> None:
        if self._writer is not None:
            self._writer.write(data)
            await self._writer.drain()
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, self._sock.sendall, data)

    async def receive(self) -> bytes:
        if self._reader is not None:
            return await self._reader.read(1 << 16)
        data = await self._queue.get()
        if not data:
            self._queue.put_nowait(b"")  # ended: every later read ends too
        return data

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        elif self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()


def _exec_key(exec_id: Any) -> str:
    """exec_create answers {"Id": ...}; the SDK takes either."""
    return str(exec_id["Id"] if isinstance(exec_id, dict) else exec_id)


def _close_attached(attach: asyncio.Future[Any]) -> None:
    if not attach.cancelled() and attach.exception() is None:
        _close_raw(attach.result())


def _close_raw(raw: Any) -> None:
    """Close the HTTP response the SDK's socket wrapper keeps alive, then the wrapper itself (in this
    order: the response flushes through the wrapper), so no ResourceWarning is left behind."""
    response = getattr(raw, "_response", None)
    for closable in (response, raw):
        if closable is not None:
            with contextlib.suppress(OSError, ValueError):
                closable.close()
