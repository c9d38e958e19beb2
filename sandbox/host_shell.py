"""The persistent-shell protocol over a local `bash` subprocess: the baseline the Docker sandbox's
shell is benchmarked against (and a container-free shell for tests). Linux only (kills via /proc)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from core.config import DEFAULT_OUTPUT_LIMIT
from sandbox.persistent_shell import PersistentShell
from sandbox.shell_scripts import STOP_SCRIPT, StopMode


class LocalShellProcess:
    """A `bash` child process with pipes; implements sandbox.persistent_shell.ShellProcess."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def spawn(cls, cwd: Path, env: Mapping[str, str] | None = None) -> LocalShellProcess:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "--noprofile",
            "--norc",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # a Ctrl-C in the host terminal must not reach the shell
        )
        return cls(process)

    async def send(self, data: bytes) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(data)
        await self._process.stdin.drain()

    async def receive(self) -> bytes:
        assert self._process.stdout is not None
        return await self._process.stdout.read(65536)  # cancel-safe: unread bytes stay buffered

    async def stop(self, shell_pid: int, mode: StopMode, jobs_file: str) -> None:
        killer = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            STOP_SCRIPT,
            "sidehand-stop",
            str(shell_pid),
            mode,
            jobs_file,
            stdin=asyncio.subprocess.DEVNULL,
        )
        await killer.wait()

    async def exit_code(self) -> int | None:
        return await self._process.wait()

    async def close(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        await self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self._process.stdin.wait_closed()


class HostShell(PersistentShell):
    """A persistent bash on the host, started in `cwd`. No isolation at all: baseline and tests only."""

    def __init__(
        self, cwd: Path, *, env: Mapping[str, str] | None = None, output_limit: int = DEFAULT_OUTPUT_LIMIT
    ) -> None:
        environment = dict(os.environ if env is None else env)

        async def spawn() -> LocalShellProcess:
            return await LocalShellProcess.spawn(cwd, environment)

        super().__init__(
            spawn, output_limit=output_limit, put_file=_put_local_file, feed_fifo=_put_local_file
        )


async def _put_local_file(path: str, data: bytes) -> None:
    """Long commands and input, for a shell on this machine (a fifo is written as it is)."""

    def put() -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A fifo is opened read-write (never waits for a reader), as the sandbox's file channel does.
        flags = os.O_RDWR if target.is_fifo() else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(target, flags | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    await asyncio.to_thread(put)
